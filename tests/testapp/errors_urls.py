from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from tests.testapp import errors_views as views

urlpatterns: list[URLPattern | URLResolver] = [
    path("orders/", views.OrdersView.as_view()),
    path("raise/<str:kind>/", views.RaiseView.as_view()),
    path("parse/", views.ParseView.as_view()),
    path("write-then-fail/", views.WriteThenFailView.as_view()),
    path("upload/", views.UploadView.as_view()),
    path("auth/", views.AuthView.as_view()),
    path("session/", views.SessionAuthView.as_view()),
    path("scope/", views.ScopeView.as_view()),
    path("denied/", views.DeniedView.as_view()),
    path("throttled/", views.ThrottledView.as_view()),
    path("plain/raise/<str:kind>/", views.plain_raise),
    path("plain/async/<str:kind>/", views.async_raise),
    path("plain/body/", views.plain_body),
    path("plain/form/", views.plain_form),
    path("problem-auth/", views.ProblemAuthView.as_view()),
    path("plain/view/", views.PlainView.as_view()),
    path("plain/async-view/", views.AsyncPlainView.as_view()),
    path("plain/post-only/", views.post_only),
    path("plain/csrf/", views.csrf_protected),
    path("plain/headered/", views.headered_not_allowed),
    path("widgets/<int:pk>/", views.WidgetView.as_view()),
]
