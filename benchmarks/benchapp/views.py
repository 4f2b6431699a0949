"""The same four endpoints, written the way each stack would write them."""

from __future__ import annotations

import json
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from benchmarks.benchapp.models import Item


class ItemSerializer(serializers.ModelSerializer[Item]):
    class Meta:
        model = Item
        fields = ["id", "name", "size"]


# --- bare Django -------------------------------------------------------------


def django_list(request: HttpRequest) -> JsonResponse:
    items = list(Item.objects.values("id", "name", "size")[:20])
    return JsonResponse({"results": items})


def django_detail(request: HttpRequest, pk: int) -> JsonResponse:
    item = Item.objects.filter(pk=pk).values("id", "name", "size").first()
    if item is None:
        return JsonResponse({"detail": "Not found."}, status=404)
    return JsonResponse(item)


def django_create(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    errors = {}
    if not isinstance(data.get("name"), str):
        errors["name"] = ["This field is required."]
    if not isinstance(data.get("size"), int):
        errors["size"] = ["A valid integer is required."]
    if errors:
        return JsonResponse(errors, status=400)
    item = Item.objects.create(name=data["name"], size=data["size"])
    return JsonResponse({"id": item.pk}, status=201)


def django_ready(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    cache.set("bench-ready", 1, 5)
    cache.get("bench-ready")
    return JsonResponse({"status": "pass"})


# --- DRF (bare and peer stack) --------------------------------------------------


class ItemList(generics.ListCreateAPIView[Item]):
    queryset = Item.objects.all()
    serializer_class = ItemSerializer


class ItemDetail(generics.RetrieveAPIView[Item]):
    queryset = Item.objects.all()
    serializer_class = ItemSerializer


class DrfReady(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        cache.set("bench-ready", 1, 5)
        cache.get("bench-ready")
        return Response({"status": "pass"})
