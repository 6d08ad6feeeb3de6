"""Login, logout and the auditors' audit log page."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from kechuang.accounts import roles, selectors
from kechuang.accounts.forms import AuditLogFilterForm


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    # Django 5 logs out on POST only (a GET link could be forged by any page).
    next_page = "accounts:login"


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    if not roles.has_ability(request.user, "read_audit_log"):
        raise PermissionDenied("read_audit_log")
    form = AuditLogFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    page = selectors.audit_log_page(filters=filters, page=request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "accounts/audit_log.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )
