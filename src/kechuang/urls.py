"""Root URLs. Pages and the API add their includes here."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from kechuang.accounts.forms import AdminLoginForm
from kechuang.api import api
from kechuang.web import views as web_views

# The admin signs in through its own page: the same lockout as /accounts/login/.
admin.site.login_form = AdminLoginForm


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", web_views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("kechuang.accounts.urls")),
    path("registry/", include("kechuang.registry.urls")),
    path("vouchers/", include("kechuang.vouchers.urls")),
    path("calculator/", include("kechuang.calculator.urls")),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
]
