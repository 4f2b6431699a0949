from __future__ import annotations

from django.urls import path

from benchmarks.benchapp import views

urlpatterns = [
    path("mem/items/", views.MemoryItemList.as_view()),
    path("mem/items/<int:pk>/", views.MemoryItemDetail.as_view()),
    path("items/", views.ItemList.as_view()),
    path("items/new/", views.ItemList.as_view()),
    path("items/<int:pk>/", views.ItemDetail.as_view()),
    path("health/ready", views.DrfReady.as_view()),
]
