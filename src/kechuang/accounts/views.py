"""Login, logout and the auditors' audit log page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from kechuang.accounts import roles, selectors, tokens
from kechuang.accounts.forms import ApiTokenForm, AuditLogFilterForm, LoginForm
from kechuang.accounts.models import ApiToken


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
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


@never_cache  # the page shows a new token once: no copy may stay in a cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """The signed-in user's own API tokens: issue one (shown once) or revoke one."""
    form = ApiTokenForm(request.POST or None)
    clear = None
    if request.method == "POST" and form.is_valid():
        _token, clear = tokens.token_create(
            user=request.user, name=form.cleaned_data["name"], actor=request.user
        )
        form = ApiTokenForm()
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "clear": clear,
            "tokens": ApiToken.objects.filter(user=request.user).order_by("-created_at"),
        },
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    # Only one's own tokens: another user's token id is simply not found.
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    tokens.token_revoke(token=token, actor=request.user)
    messages.success(request, _("令牌已吊销。"))
    return redirect("accounts:tokens")
