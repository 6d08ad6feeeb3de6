"""Voucher endpoints, mounted at ``/api/vouchers``. Each endpoint: input schema →
one access lookup (404 for what the user may not see) → one service or
selector → output schema. Every money-moving call takes an ``idempotency_key``:
the same request sent twice moves money once, and returns the same answer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile

from kechuang.errors import KechuangError
from kechuang.vouchers import access, selectors, services
from kechuang.vouchers.models import Offering, Program, ServiceCategory

router = Router(tags=["vouchers"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ---------------------------------------------------------------- schemas


class ProgramIn(Schema):
    year: int
    name: str
    budget: Decimal
    per_enterprise_cap: Decimal
    per_team_cap: Decimal
    valid_from: dt.date
    valid_until: dt.date
    categories: list[str]
    idempotency_key: str


class ProgramOut(Schema):
    id: int
    year: int
    name: str
    scheme: str
    budget: Decimal
    per_enterprise_cap: Decimal
    per_team_cap: Decimal
    valid_from: dt.date
    valid_until: dt.date
    categories: list[str]

    @staticmethod
    def resolve_categories(obj: Program) -> list[str]:
        return [c.code for c in obj.categories.all()]


class BalancesOut(Schema):
    budget: Decimal
    unallocated: Decimal
    quota: Decimal
    committed: Decimal
    payable: Decimal
    paid: Decimal


class InstitutionIn(Schema):
    name: str
    credit_code: str
    contact: str = ""
    bank_name: str = ""
    bank_account: str = ""


class InstitutionOut(Schema):
    id: int
    name: str
    credit_code: str
    status: str
    decision_reason: str


class DecisionIn(Schema):
    approve: bool
    reason: str = ""


class OfferingIn(Schema):
    category: str
    name: str
    price: Decimal


class OfferingOut(Schema):
    id: int
    institution_id: int
    category: str
    name: str
    price: Decimal

    @staticmethod
    def resolve_category(obj: Offering) -> str:
        return obj.category.code


class QuotaApplicationIn(Schema):
    program: int
    amount: Decimal
    applicant_type: str = "enterprise"
    applicant_facts: dict[str, Any] = {}


class QuotaApplicationOut(Schema):
    id: int
    program_id: int
    enterprise: str
    applicant_type: str
    requested_amount: Decimal
    approved_amount: Decimal | None
    status: str
    reason: str

    @staticmethod
    def resolve_enterprise(obj: Any) -> str:
        return obj.enterprise.credit_code


class ApproveIn(Schema):
    amount: Decimal
    idempotency_key: str
    reason: str = ""


class RejectIn(Schema):
    reason: str


class KeyIn(Schema):
    idempotency_key: str


class VoucherApplyIn(Schema):
    idempotency_key: str
    eligible_amount: Decimal | None = None


class CancelIn(Schema):
    idempotency_key: str
    reason: str = ""


class QuotaOut(Schema):
    program: int
    issued: Decimal
    left: Decimal


class OrderIn(Schema):
    program: int
    offering: int
    contract_amount: Decimal
    order_date: dt.date
    start_date: dt.date
    end_date: dt.date
    contract_number: str = ""


class OrderOut(Schema):
    id: int
    program_id: int
    enterprise: str
    institution_id: int
    offering_id: int
    contract_number: str
    contract_amount: Decimal
    order_date: dt.date
    start_date: dt.date
    end_date: dt.date
    status: str
    subsidy_amount: Decimal | None
    enterprise_pays: Decimal | None
    ratio: str
    ratio_since: dt.date | None
    ratio_article: str
    policy_sha256: str
    delivery_file_type: str

    @staticmethod
    def resolve_enterprise(obj: Any) -> str:
        return obj.enterprise.credit_code


class ClaimOut(Schema):
    id: int
    order_id: int
    institution_id: int
    amount: Decimal
    status: str
    reason: str
    batch_id: int | None


class BatchOut(Schema):
    id: int
    program_id: int
    total: Decimal
    created_at: dt.datetime


class EntryOut(Schema):
    transaction: int
    at: dt.datetime
    memo: str
    actor: str | None
    account: str
    side: str
    amount: Decimal


class StatRow(Schema):
    key: str
    enterprises: int
    issued: Decimal
    redeemed: Decimal
    rate: Decimal | None


class StatisticsOut(Schema):
    program: int
    enterprises_issued: int
    amount_issued: Decimal
    amount_redeemed: Decimal
    redemption_rate: Decimal | None
    by_industry: list[StatRow]
    by_street: list[StatRow]
    by_institution: list[StatRow]


class ExpireOut(Schema):
    transactions: int
    returned: Decimal


# ---------------------------------------------------------------- programs


def _program(request: HttpRequest, pk: int) -> Program:
    access.require_signed_in(request.user)
    return get_object_or_404(Program, pk=pk)


@router.get("/programs", response=list[ProgramOut], summary="Voucher programs")
def program_list(request: HttpRequest) -> Any:
    access.require_signed_in(request.user)
    return Program.objects.prefetch_related("categories")


@router.post(
    "/programs", response={201: ProgramOut}, summary="Create a program and fund its budget (staff)"
)
def program_create(request: HttpRequest, payload: ProgramIn) -> Any:
    access.require_staff(request.user)
    categories = list(ServiceCategory.objects.filter(code__in=payload.categories))
    unknown = set(payload.categories) - {c.code for c in categories}
    if unknown:
        raise KechuangError(
            f"未知服务类别 / unknown categories: {', '.join(sorted(unknown))}", "categories"
        )
    data = payload.dict()
    data["categories"] = categories
    return Status(201, services.program_create(actor=request.user, **data))


@router.get("/programs/{pk}", response=ProgramOut)
def program_get(request: HttpRequest, pk: int) -> Any:
    return _program(request, pk)


@router.get(
    "/programs/{pk}/balances", response=BalancesOut, summary="Ledger balances (staff, auditors)"
)
def program_balances(request: HttpRequest, pk: int) -> Any:
    access.require_ledger_reader(request.user)
    return selectors.program_balances(_program(request, pk))


@router.get(
    "/programs/{pk}/ledger", response=list[EntryOut], summary="Every ledger entry (staff, auditors)"
)
def program_ledger(request: HttpRequest, pk: int) -> Any:
    access.require_ledger_reader(request.user)
    return [
        {
            "transaction": e.transaction_id,
            "at": e.transaction.at,
            "memo": e.transaction.memo,
            "actor": e.transaction.actor.username if e.transaction.actor else None,
            "account": str(e.account),
            "side": e.side,
            "amount": e.amount,
        }
        for e in selectors.ledger_entries(_program(request, pk))
    ]


@router.get(
    "/programs/{pk}/statistics",
    response=StatisticsOut,
    summary="Issued and redeemed (staff, auditors)",
)
def program_statistics(
    request: HttpRequest, pk: int, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> Any:
    access.require_ledger_reader(request.user)
    return selectors.program_statistics(_program(request, pk), date_from, date_to)


class BudgetAdjustIn(Schema):
    delta: str
    reason: str
    idempotency_key: str


@router.post("/programs/{pk}/budget", response=ProgramOut, summary="Adjust the budget (staff)")
def program_budget_adjust(request: HttpRequest, pk: int, payload: BudgetAdjustIn) -> Any:
    access.require_staff(request.user)
    return services.program_budget_adjust(
        program=_program(request, pk), actor=request.user, **payload.dict()
    )


@router.post(
    "/programs/{pk}/expire",
    response=ExpireOut,
    summary="Return unused quota after validity (staff)",
)
def program_expire(request: HttpRequest, pk: int) -> Any:
    access.require_staff(request.user)
    posted = services.quota_expire(program=_program(request, pk), actor=request.user)
    return {
        "transactions": len(posted),
        "returned": sum((t.entries.first().amount for t in posted), Decimal(0)),
    }


@router.post(
    "/programs/{pk}/settlements", response={201: BatchOut}, summary="Pay approved claims (staff)"
)
def settlement_create(request: HttpRequest, pk: int, payload: KeyIn) -> Any:
    access.require_staff(request.user)
    batch = services.settlement_batch_create(
        program=_program(request, pk), actor=request.user, idempotency_key=payload.idempotency_key
    )
    return Status(201, batch)


@router.get("/settlements/{pk}/payment.xlsx", summary="A batch's payment file (staff, auditors)")
def settlement_file(request: HttpRequest, pk: int) -> HttpResponse:
    access.require_ledger_reader(request.user)
    batch = access.batch_for_view(request.user, pk)
    response = HttpResponse(selectors.settlement_workbook(batch), content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="settlement-{batch.pk}.xlsx"'
    return response


# ---------------------------------------------------------------- institutions


@router.post(
    "/institutions", response={201: InstitutionOut}, summary="Apply to join (institution users)"
)
def institution_apply(request: HttpRequest, payload: InstitutionIn) -> Any:
    return Status(201, services.institution_apply(actor=request.user, **payload.dict()))


@router.get("/institutions", response=list[InstitutionOut])
def institution_list(request: HttpRequest) -> Any:
    return access.institutions_visible_to(request.user)


@router.post(
    "/institutions/{pk}/decision", response=InstitutionOut, summary="Approve or reject (staff)"
)
def institution_decide(request: HttpRequest, pk: int, payload: DecisionIn) -> Any:
    access.require_staff(request.user)
    inst = access.institution_for_view(request.user, pk)
    return services.institution_decide(institution=inst, actor=request.user, **payload.dict())


@router.post(
    "/institutions/{pk}/offerings", response={201: OfferingOut}, summary="Publish a service"
)
def offering_create(request: HttpRequest, pk: int, payload: OfferingIn) -> Any:
    inst = access.institution_for_view(request.user, pk)
    category = get_object_or_404(ServiceCategory, code=payload.category)
    return Status(
        201,
        services.offering_create(
            institution=inst,
            actor=request.user,
            category=category,
            name=payload.name,
            price=payload.price,
        ),
    )


@router.get(
    "/offerings", response=list[OfferingOut], summary="The catalogue of approved institutions"
)
def offering_list(request: HttpRequest) -> Any:
    return Offering.objects.filter(active=True, institution__status="approved").select_related(
        "category"
    )


# ---------------------------------------------------------------- quota


@router.post(
    "/quota-applications",
    response={201: QuotaApplicationOut},
    summary="Apply for a quota (enterprise)",
)
def quota_apply(request: HttpRequest, payload: QuotaApplicationIn) -> Any:
    if not access.is_enterprise_user(request.user):
        raise PermissionDenied("enterprise users only")
    return Status(
        201,
        services.quota_apply(
            program=_program(request, payload.program),
            enterprise=request.user.enterprise,
            actor=request.user,
            amount=payload.amount,
            applicant_type=payload.applicant_type,
            applicant_facts=payload.applicant_facts,
        ),
    )


@router.get("/quota-applications", response=list[QuotaApplicationOut])
def quota_application_list(request: HttpRequest) -> Any:
    return access.applications_visible_to(request.user)


@router.get("/quota-applications/{pk}", response=QuotaApplicationOut)
def quota_application_get(request: HttpRequest, pk: int) -> Any:
    return access.application_for_view(request.user, pk)


@router.post(
    "/quota-applications/{pk}/approve",
    response=QuotaApplicationOut,
    summary="Approve and issue (staff)",
)
def quota_approve(request: HttpRequest, pk: int, payload: ApproveIn) -> Any:
    app = access.application_for_view(request.user, pk)
    return services.quota_approve(application=app, actor=request.user, **payload.dict())


@router.post(
    "/quota-applications/{pk}/reject", response=QuotaApplicationOut, summary="Reject (staff)"
)
def quota_reject(request: HttpRequest, pk: int, payload: RejectIn) -> Any:
    app = access.application_for_view(request.user, pk)
    return services.quota_reject(application=app, actor=request.user, reason=payload.reason)


@router.get("/quota", response=list[QuotaOut], summary="My enterprise's quota per program")
def my_quota(request: HttpRequest) -> Any:
    if not access.is_enterprise_user(request.user):
        raise PermissionDenied("enterprise users only")
    return [
        {"program": q["program"].pk, "issued": q["issued"], "left": q["left"]}
        for q in selectors.enterprise_quotas(request.user.enterprise)
    ]


# ---------------------------------------------------------------- orders


@router.post("/orders", response={201: OrderOut}, summary="Record a service order (enterprise)")
def order_create(request: HttpRequest, payload: OrderIn) -> Any:
    if not access.is_enterprise_user(request.user):
        raise PermissionDenied("enterprise users only")
    offering = get_object_or_404(
        Offering.objects.select_related("institution"), pk=payload.offering
    )
    data = payload.dict()
    data.pop("program")
    data.pop("offering")
    return Status(
        201,
        services.order_create(
            program=_program(request, payload.program),
            enterprise=request.user.enterprise,
            offering=offering,
            actor=request.user,
            **data,
        ),
    )


@router.get("/orders", response=list[OrderOut], summary="Orders the user may see")
def order_list(request: HttpRequest, status: str | None = None) -> Any:
    qs = access.orders_visible_to(request.user)
    return qs.filter(status=status) if status else qs


@router.get("/orders/{pk}", response=OrderOut)
def order_get(request: HttpRequest, pk: int) -> Any:
    return access.order_for_view(request.user, pk)


@router.post(
    "/orders/{pk}/vouchers", response=OrderOut, summary="Apply vouchers to an order (enterprise)"
)
def order_voucher_apply(request: HttpRequest, pk: int, payload: VoucherApplyIn) -> Any:
    order = access.order_for_enterprise(request.user, pk)
    return services.order_voucher_apply(order=order, actor=request.user, **payload.dict())


@router.post("/orders/{pk}/cancel", response=OrderOut, summary="Cancel before delivery")
def order_cancel(request: HttpRequest, pk: int, payload: CancelIn) -> Any:
    order = access.order_for_view(request.user, pk)
    return services.order_cancel(order=order, actor=request.user, **payload.dict())


@router.post(
    "/orders/{pk}/delivery", response=OrderOut, summary="Confirm delivery with a report or invoice"
)
def order_deliver(request: HttpRequest, pk: int, file: File[UploadedFile]) -> Any:
    order = access.order_for_institution(request.user, pk)
    return services.order_deliver(order=order, actor=request.user, upload=file)


@router.post(
    "/orders/{pk}/claim", response={201: ClaimOut}, summary="Claim redemption (institution)"
)
def claim_submit(request: HttpRequest, pk: int) -> Any:
    order = access.order_for_institution(request.user, pk)
    return Status(201, services.claim_submit(order=order, actor=request.user))


# ---------------------------------------------------------------- claims


@router.get(
    "/claims", response=list[ClaimOut], summary="Claims the user may see (payments: status=paid)"
)
def claim_list(request: HttpRequest, status: str | None = None) -> Any:
    qs = access.claims_visible_to(request.user)
    return qs.filter(status=status) if status else qs


@router.post("/claims/{pk}/approve", response=ClaimOut, summary="Approve a claim (staff)")
def claim_approve(request: HttpRequest, pk: int, payload: KeyIn) -> Any:
    claim = access.claim_for_view(request.user, pk)
    return services.claim_approve(
        claim=claim, actor=request.user, idempotency_key=payload.idempotency_key
    )


@router.post(
    "/claims/{pk}/reject", response=ClaimOut, summary="Reject a claim with a reason (staff)"
)
def claim_reject(request: HttpRequest, pk: int, payload: RejectIn) -> Any:
    claim = access.claim_for_view(request.user, pk)
    return services.claim_reject(claim=claim, actor=request.user, reason=payload.reason)
