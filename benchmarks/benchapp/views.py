"""The same four endpoints, written the way each stack would write them."""

from __future__ import annotations

import json
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpRequest, JsonResponse
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


# --- items from memory: framework and middleware cost only -------------------

#: 100 unsaved items, served without a query, so that the database does not
#: dilute what the stack itself adds to a request.
MEMORY_ITEMS = [Item(id=i, name=f"item {i}", size=i) for i in range(1, 101)]
_MEMORY_INDEX = {item.pk: item for item in MEMORY_ITEMS}


def django_memory_list(request: HttpRequest) -> JsonResponse:
    items = [{"id": i.pk, "name": i.name, "size": i.size} for i in MEMORY_ITEMS[:20]]
    return JsonResponse({"results": items})


def django_memory_detail(request: HttpRequest, pk: int) -> JsonResponse:
    item = _MEMORY_INDEX.get(pk)
    if item is None:
        return JsonResponse({"detail": "Not found."}, status=404)
    return JsonResponse({"id": item.pk, "name": item.name, "size": item.size})


class MemoryItemList(generics.ListAPIView[Item]):
    """The list endpoint over :data:`MEMORY_ITEMS`: pagination, serializer and
    renderer as with a query, no database."""

    serializer_class = ItemSerializer

    def get_queryset(self) -> Any:
        return MEMORY_ITEMS


class MemoryItemDetail(generics.RetrieveAPIView[Item]):
    """One item of :data:`MEMORY_ITEMS`; ``Http404`` raised in the view when
    there is none."""

    serializer_class = ItemSerializer

    def get_object(self) -> Item:
        item = _MEMORY_INDEX.get(self.kwargs["pk"])
        if item is None:
            raise Http404
        return item
