from __future__ import annotations

from django.urls import path

from benchmarks.benchapp import views

urlpatterns = [
    path("mem/items/", views.django_memory_list),
    path("mem/items/<int:pk>/", views.django_memory_detail),
    path("items/", views.django_list),
    path("items/new/", views.django_create),
    path("items/<int:pk>/", views.django_detail),
    path("health/ready", views.django_ready),
]
