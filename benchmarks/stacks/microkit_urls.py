from __future__ import annotations

from django.urls import include, path

from benchmarks.benchapp import views

urlpatterns = [
    path("mem/items/", views.MemoryItemList.as_view()),
    path("mem/items/<int:pk>/", views.MemoryItemDetail.as_view()),
    path("items/", views.ItemList.as_view()),
    path("items/new/", views.ItemList.as_view()),
    path("items/<int:pk>/", views.ItemDetail.as_view()),
    path("", include("django_microkit.urls")),
]

handler400 = "django_microkit.errors.bad_request"
handler403 = "django_microkit.errors.permission_denied"
handler404 = "django_microkit.errors.page_not_found"
handler500 = "django_microkit.errors.server_error"
