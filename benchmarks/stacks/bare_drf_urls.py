from __future__ import annotations

from django.urls import path

from benchmarks.benchapp import views

urlpatterns = [
    path("items/", views.ItemList.as_view()),
    path("items/new/", views.ItemList.as_view()),
    path("items/<int:pk>/", views.ItemDetail.as_view()),
    path("health/ready", views.DrfReady.as_view()),
]
