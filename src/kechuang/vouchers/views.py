"""Voucher pages. Thin: access from ``access``, reads from ``selectors``, writes
through ``services``. Each POST view handles one action and redirects back. A refused
action changes nothing and says why: a form that creates something (program,
institution, offering, quota application, order) shows again as typed, with status 400
and each problem beside its field; a decision on an existing object, as a message.
Forms that move money carry a fresh idempotency key, so a double-click or a resubmitted
form moves money once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from kechuang.errors import KechuangError
from kechuang.vouchers import access, selectors, services
from kechuang.vouchers.forms import (
    InstitutionForm,
    OfferingForm,
    OrderForm,
    ProgramForm,
    QuotaApplyForm,
    StatisticsFilter,
)
from kechuang.vouchers.models import Claim, Institution, Offering, Program, QuotaApplication

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _key() -> str:
    return uuid.uuid4().hex


def _attempt(request: HttpRequest, call: Callable[[], Any], success: str) -> bool:
    try:
        call()
    except KechuangError as exc:
        messages.error(request, exc.message)
        return False
    messages.success(request, success)
    return True


def _refused(
    request: HttpRequest, name: str, form: Any, exc: KechuangError | None = None
) -> HttpResponse:
    """The voucher page again with ``form`` (context name ``name``) as submitted."""
    if exc is not None:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    return _render_home(request, status=400, **{name: form})


def _back(request: HttpRequest, default: str = "vouchers:home") -> HttpResponse:
    # Only ever redirect within the site.
    target = request.POST.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect(default)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return _render_home(request)


def _render_home(request: HttpRequest, status: int = 200, **bound: Any) -> HttpResponse:
    """Each role's voucher page; ``bound``: a submitted form shown again (what was typed
    kept, each problem beside its field) in place of the empty one."""
    user = request.user
    access.require_signed_in(user)
    context: dict[str, Any] = {"key": _key(), "programs": Program.objects.all()}
    if access.is_enterprise_user(user):
        context.update(
            role="enterprise",
            quotas=selectors.enterprise_quotas(user.enterprise),
            applications=access.applications_visible_to(user)[:50],
            orders=access.orders_visible_to(user)[:100],
            quota_form=QuotaApplyForm(),
            order_form=OrderForm(),
            offerings=Offering.objects.filter(
                active=True, institution__status="approved"
            ).select_related("institution", "category"),
        )
    elif access.is_institution_user(user):
        inst = access.institution_of(user)
        context.update(role="institution", institution=inst)
        if inst is None:
            context["institution_form"] = InstitutionForm()
        else:
            claims = access.claims_visible_to(user)
            context.update(
                orders=access.orders_visible_to(user)[:100],
                claims=claims.exclude(status="paid")[:100],
                payments=claims.filter(status="paid").select_related("batch")[:100],
                offerings=inst.offerings.select_related("category"),
                offering_form=OfferingForm(),
            )
    elif access.is_staff(user):
        context.update(
            role="staff",
            institutions=Institution.objects.filter(status="pending"),
            applications=QuotaApplication.objects.filter(status="submitted").select_related(
                "enterprise", "program"
            ),
            claims=Claim.objects.filter(status="submitted").select_related(
                "order", "institution", "order__enterprise"
            ),
            to_settle=Claim.objects.filter(status="approved", batch__isnull=True).count(),
            program_form=ProgramForm(),
        )
    elif access.is_auditor(user):
        context.update(role="auditor")
    else:
        raise PermissionDenied("no voucher role")
    context.update(bound)
    return render(request, "vouchers/home.html", context, status=status)


# ---------------------------------------------------------------- programs


@login_required
def program_detail(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_ledger_reader(request.user)
    program = get_object_or_404(Program, pk=pk)
    flt = StatisticsFilter(request.GET or None)
    dates = flt.cleaned_data if flt.is_valid() else {}
    stats = selectors.program_statistics(program, dates.get("date_from"), dates.get("date_to"))
    return render(
        request,
        "vouchers/program.html",
        {
            "program": program,
            "stats": stats,
            "filter": flt,
            "query": request.GET.urlencode(),
            "balances": selectors.program_balances(program),
            "identity": selectors.budget_identity_holds(program),
            "batches": program.batches.all(),
            "key": _key(),
        },
    )


def _stats(request: HttpRequest, pk: int) -> tuple[Program, dict[str, Any]]:
    access.require_ledger_reader(request.user)
    program = get_object_or_404(Program, pk=pk)
    flt = StatisticsFilter(request.GET or None)
    dates = flt.cleaned_data if flt.is_valid() else {}
    return program, selectors.program_statistics(
        program, dates.get("date_from"), dates.get("date_to")
    )


@login_required
def program_chart(request: HttpRequest, pk: int) -> HttpResponse:
    _program, stats = _stats(request, pk)
    return HttpResponse(selectors.statistics_chart_png(stats), content_type="image/png")


@login_required
def program_export(request: HttpRequest, pk: int) -> HttpResponse:
    program, stats = _stats(request, pk)
    response = HttpResponse(selectors.statistics_workbook(stats, program), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="vouchers-{program.pk}.xlsx"'
    return response


@login_required
def program_ledger(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_ledger_reader(request.user)
    program = get_object_or_404(Program, pk=pk)
    return render(
        request,
        "vouchers/ledger.html",
        {
            "program": program,
            "entries": selectors.ledger_entries(program)[:2000],
            "balances": selectors.program_balances(program),
            "identity": selectors.budget_identity_holds(program),
            "unbalanced": selectors.unbalanced_transactions(program),
        },
    )


@login_required
@require_POST
def program_create(request: HttpRequest) -> HttpResponse:
    access.require_staff(request.user)
    form = ProgramForm(request.POST)
    if not form.is_valid():
        return _refused(request, "program_form", form)
    try:
        services.program_create(
            actor=request.user,
            idempotency_key=request.POST.get("idempotency_key", ""),
            **form.cleaned_data,
        )
    except KechuangError as exc:
        return _refused(request, "program_form", form, exc)
    messages.success(request, _("项目已创建，预算已入账。"))
    return redirect("vouchers:home")


@login_required
@require_POST
def program_expire(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_staff(request.user)
    program = get_object_or_404(Program, pk=pk)
    _attempt(
        request,
        lambda: services.quota_expire(program=program, actor=request.user),
        _("未使用额度已收回。"),
    )
    return redirect("vouchers:program", program.pk)


@login_required
@require_POST
def settlement_create(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_staff(request.user)
    program = get_object_or_404(Program, pk=pk)
    _attempt(
        request,
        lambda: services.settlement_batch_create(
            program=program,
            actor=request.user,
            idempotency_key=request.POST.get("idempotency_key", ""),
        ),
        _("结算批次已生成，兑付已标记为已支付。"),
    )
    return redirect("vouchers:program", program.pk)


@login_required
def settlement_file(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_ledger_reader(request.user)
    batch = access.batch_for_view(request.user, pk)
    response = HttpResponse(selectors.settlement_workbook(batch), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="settlement-{batch.pk}.xlsx"'
    return response


# ---------------------------------------------------------------- institutions


@login_required
@require_POST
def institution_apply(request: HttpRequest) -> HttpResponse:
    if not access.is_institution_user(request.user):
        raise PermissionDenied("institution users only")
    form = InstitutionForm(request.POST)
    if not form.is_valid():
        return _refused(request, "institution_form", form)
    try:
        services.institution_apply(actor=request.user, **form.cleaned_data)
    except KechuangError as exc:
        return _refused(request, "institution_form", form, exc)
    messages.success(request, _("入库申请已提交。"))
    return redirect("vouchers:home")


@login_required
@require_POST
def institution_decide(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_staff(request.user)
    inst = access.institution_for_view(request.user, pk)
    _attempt(
        request,
        lambda: services.institution_decide(
            institution=inst,
            actor=request.user,
            approve=request.POST.get("decision") == "approve",
            reason=request.POST.get("reason", ""),
        ),
        _("已处理。"),
    )
    return redirect("vouchers:home")


@login_required
@require_POST
def offering_create(request: HttpRequest) -> HttpResponse:
    inst = access.institution_of(request.user)
    if inst is None:
        raise PermissionDenied("institution users only")
    form = OfferingForm(request.POST)
    if not form.is_valid():
        return _refused(request, "offering_form", form)
    try:
        services.offering_create(institution=inst, actor=request.user, **form.cleaned_data)
    except KechuangError as exc:
        return _refused(request, "offering_form", form, exc)
    messages.success(request, _("服务已发布。"))
    return redirect("vouchers:home")


# ---------------------------------------------------------------- quota


@login_required
@require_POST
def quota_apply(request: HttpRequest) -> HttpResponse:
    if not access.is_enterprise_user(request.user):
        raise PermissionDenied("enterprise users only")
    form = QuotaApplyForm(request.POST)
    if not form.is_valid():
        return _refused(request, "quota_form", form)
    data = form.cleaned_data
    try:
        services.quota_apply(
            program=data["program"],
            enterprise=request.user.enterprise,
            actor=request.user,
            amount=data["amount"],
            applicant_type=data["applicant_type"],
            applicant_facts=form.applicant_facts(),
        )
    except KechuangError as exc:
        return _refused(request, "quota_form", form, exc)
    messages.success(request, _("额度申请已提交。"))
    return redirect("vouchers:home")


@login_required
@require_POST
def quota_decide(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_staff(request.user)
    app = access.application_for_view(request.user, pk)
    if request.POST.get("decision") == "approve":
        _attempt(
            request,
            lambda: services.quota_approve(
                application=app,
                actor=request.user,
                amount=request.POST.get("amount", ""),
                idempotency_key=request.POST.get("idempotency_key", ""),
                reason=request.POST.get("reason", ""),
            ),
            _("额度已发放。"),
        )
    else:
        _attempt(
            request,
            lambda: services.quota_reject(
                application=app, actor=request.user, reason=request.POST.get("reason", "")
            ),
            _("申请已驳回。"),
        )
    return redirect("vouchers:home")


# ---------------------------------------------------------------- orders


@login_required
@require_POST
def order_create(request: HttpRequest) -> HttpResponse:
    if not access.is_enterprise_user(request.user):
        raise PermissionDenied("enterprise users only")
    form = OrderForm(request.POST)
    if not form.is_valid():
        return _refused(request, "order_form", form)
    data = dict(form.cleaned_data)
    offering = get_object_or_404(Offering, pk=data.pop("offering"))
    program = data.pop("program")
    try:
        order = services.order_create(
            program=program,
            enterprise=request.user.enterprise,
            offering=offering,
            actor=request.user,
            **data,
        )
    except KechuangError as exc:
        return _refused(request, "order_form", form, exc)
    messages.success(request, _("订单已登记。"))
    return redirect("vouchers:order", order.pk)


@login_required
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = access.order_for_view(request.user, pk)
    return render(
        request,
        "vouchers/order.html",
        {
            "order": order,
            "claims": order.claims.all(),
            "is_owner": access.acts_for(request.user, order.enterprise),
            "is_provider": access.institution_of(request.user) == order.institution,
            "is_staff": access.is_staff(request.user),
            "key": _key(),
        },
    )


@login_required
@require_POST
def order_apply(request: HttpRequest, pk: int) -> HttpResponse:
    order = access.order_for_enterprise(request.user, pk)
    _attempt(
        request,
        lambda: services.order_voucher_apply(
            order=order,
            actor=request.user,
            idempotency_key=request.POST.get("idempotency_key", ""),
            eligible_amount=request.POST.get("eligible_amount") or None,
        ),
        _("已用券。"),
    )
    return redirect("vouchers:order", order.pk)


@login_required
@require_POST
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    order = access.order_for_view(request.user, pk)
    _attempt(
        request,
        lambda: services.order_cancel(
            order=order,
            actor=request.user,
            idempotency_key=request.POST.get("idempotency_key", ""),
            reason=request.POST.get("reason", ""),
        ),
        _("订单已取消。"),
    )
    return redirect("vouchers:order", order.pk)


@login_required
@require_POST
def order_deliver(request: HttpRequest, pk: int) -> HttpResponse:
    order = access.order_for_institution(request.user, pk)
    _attempt(
        request,
        lambda: services.order_deliver(
            order=order, actor=request.user, upload=request.FILES.get("file")
        ),
        _("已确认交付。"),
    )
    return redirect("vouchers:order", order.pk)


@login_required
def order_delivery_file(request: HttpRequest, pk: int) -> HttpResponse:
    order = access.order_for_view(request.user, pk)
    if not order.delivery_file:
        raise PermissionDenied("no file")
    types = {
        "pdf": "application/pdf",
        "png": "image/png",
        "jpg": "image/jpeg",
        "ofd": "application/ofd",
    }
    response = HttpResponse(
        order.delivery_file.read(), content_type=types[order.delivery_file_type]
    )
    response["Content-Disposition"] = (
        f'attachment; filename="order-{order.pk}.{order.delivery_file_type}"'
    )
    return response


@login_required
@require_POST
def order_claim(request: HttpRequest, pk: int) -> HttpResponse:
    order = access.order_for_institution(request.user, pk)
    _attempt(
        request,
        lambda: services.claim_submit(order=order, actor=request.user),
        _("兑付申请已提交。"),
    )
    return redirect("vouchers:order", order.pk)


@login_required
@require_POST
def claim_decide(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_staff(request.user)
    claim = access.claim_for_view(request.user, pk)
    if request.POST.get("decision") == "approve":
        _attempt(
            request,
            lambda: services.claim_approve(
                claim=claim,
                actor=request.user,
                idempotency_key=request.POST.get("idempotency_key", ""),
            ),
            _("兑付已批准。"),
        )
    else:
        _attempt(
            request,
            lambda: services.claim_reject(
                claim=claim, actor=request.user, reason=request.POST.get("reason", "")
            ),
            _("兑付已驳回。"),
        )
    return _back(request)
