"""The calculator's pages: the enterprise self-check (政策计算器) and the public calculator.

Views are thin: access checks in ``access.py``, reads in ``selectors.py``, the
public calculator's evaluation in ``services.py``. The 免申即享 run pages are in
``views_runs.py`` (when present).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from kechuang.calculator import access, selectors, services
from kechuang.calculator.forms import AsOfForm, EnterpriseCodeForm, PolicyFactsForm
from kechuang.errors import KechuangError
from kechuang.rules import UnknownPolicy, get_policy


def index(request: HttpRequest) -> HttpResponse:
    """An enterprise user goes to their own self-check; staff choose an enterprise."""
    own = access.own_enterprise(request.user)
    if own is not None:
        return redirect("calculator:selfcheck", credit_code=own.credit_code)
    form = None
    if access.may_check_any_enterprise(request.user):
        form = EnterpriseCodeForm(request.GET or None)
        if form.is_bound and form.is_valid():
            return redirect("calculator:selfcheck", credit_code=form.cleaned_data["code"].strip())
    return render(request, "calculator/index.html", {"form": form})


@login_required
def selfcheck(request: HttpRequest, credit_code: str) -> HttpResponse:
    enterprise = access.enterprise_for_selfcheck(request.user, credit_code)
    form = AsOfForm(request.GET or None)
    as_of = form.as_of_or_today()
    result = selectors.enterprise_selfcheck(enterprise=enterprise, as_of=as_of, user=request.user)
    return render(
        request,
        "calculator/selfcheck.html",
        {"form": form, "result": result, "as_of": as_of},
    )


def public_index(request: HttpRequest) -> HttpResponse:
    # Titles only: a visitor's list needs no parameter values (and no database).
    policies = selectors.policies_in_force(dt.date.today(), published=False)
    lang = selectors._lang()
    return render(
        request,
        "calculator/public_index.html",
        {"policies": [(p.id, p.title.get(lang), p.authority.get(lang)) for p in policies]},
    )


@require_http_methods(["GET", "POST"])
def public_try(request: HttpRequest, policy_id: str) -> HttpResponse:
    """A visitor types one policy's figures and reads the decision; nothing is stored."""
    try:
        policy = get_policy(policy_id)
    except UnknownPolicy:
        raise Http404() from None
    lang = selectors._lang()
    as_of_form = AsOfForm(request.POST if request.method == "POST" else request.GET or None)
    as_of = as_of_form.as_of_or_today()
    check = None
    if request.method == "POST":
        form = PolicyFactsForm(request.POST, policy=policy, as_of=as_of, lang=lang)
        if form.is_valid():
            try:
                decision = services.calculator_try(
                    policy_id=policy.id,
                    facts=services.nested_from_paths(form.facts()),
                    as_of=form.cleaned_data["as_of"],
                )
            except KechuangError as exc:
                form.add_error(None, exc.message)
            else:
                check = selectors.policy_check(decision)
    else:
        form = PolicyFactsForm(policy=policy, as_of=as_of, lang=lang, initial={"as_of": as_of})
    return render(
        request,
        "calculator/public_try.html",
        {
            "policy": policy,
            "title": policy.title.get(lang),
            "form": form,
            "check": check,
            "selfcheck_url": _own_selfcheck_url(request),
        },
    )


def _own_selfcheck_url(request: HttpRequest) -> str | None:
    own = access.own_enterprise(request.user)
    if own is None:
        return None
    return reverse("calculator:selfcheck", args=[own.credit_code])
