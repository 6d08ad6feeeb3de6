"""Registry endpoints, mounted at ``/api/enterprises``. Same access rules as the pages:
every endpoint goes through ``registry.access``; an enterprise the token's user
may not see is 404 with the same body as a credit code that does not exist."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, JsonResponse
from ninja import File, Path, Query, Router, Schema
from ninja.files import UploadedFile
from pydantic import ConfigDict

from kechuang.accounts import roles
from kechuang.dates import check_day
from kechuang.errors import KechuangError
from kechuang.registry import access, selectors, services
from kechuang.registry.forms import ENTERPRISE_USER_FIELDS, FISCAL_YEAR_FIELDS, STAFF_FIELDS

router = Router(tags=["registry"])


class EnterpriseFlags(Schema):
    """The yes/no facts the commission records (null: not known)."""

    registered_in_mainland: bool | None = None
    registered_in_shanghai: bool | None = None
    resident_enterprise: bool | None = None
    accounting_sound: bool | None = None
    audit_based_cit_collection: bool | None = None
    tech_field_supported: bool | None = None
    industry_restricted_or_eliminated: bool | None = None
    standards_participation: bool | None = None
    is_ic_or_machine_tool_enterprise: bool | None = None
    ip_surveyed: bool | None = None
    compliance_checked: bool | None = None


class EnterpriseOut(EnterpriseFlags):
    credit_code: str
    name: str
    registration_date: dt.date | None
    district: str
    street: str
    industry_code: str
    high_tech_field: str
    address: str
    contact_name: str
    contact_phone: str
    contact_email: str


class EnterprisePage(Schema):
    count: int
    page: int
    pages: int
    items: list[EnterpriseOut]


class EnterprisePatch(EnterpriseFlags):
    """Only the fields sent are changed. Enterprise users may change the contact
    fields, address and high-tech field; commission staff every field here. A field
    that is not here is refused (422), not ignored."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    registration_date: dt.date | None = None
    district: str | None = None
    street: str | None = None
    industry_code: str | None = None
    high_tech_field: str | None = None
    address: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None


class FiscalYearOut(Schema):
    year: int
    sales_revenue: Decimal | None
    total_income: Decimal | None
    high_tech_income: Decimal | None
    rd_expense: Decimal | None
    rd_expense_domestic: Decimal | None
    total_cost_expense: Decimal | None
    total_assets: Decimal | None
    total_liabilities: Decimal | None
    staff_total: Decimal | None
    staff_sci_tech: Decimal | None
    conversions: int | None


class FiscalYearIn(Schema):
    """Every figure of the year; null = unknown (never send 0 for unknown)."""

    sales_revenue: Decimal | None = None
    total_income: Decimal | None = None
    high_tech_income: Decimal | None = None
    rd_expense: Decimal | None = None
    rd_expense_domestic: Decimal | None = None
    total_cost_expense: Decimal | None = None
    total_assets: Decimal | None = None
    total_liabilities: Decimal | None = None
    staff_total: Decimal | None = None
    staff_sci_tech: Decimal | None = None
    conversions: int | None = None


class IPAssetOut(Schema):
    number: str
    ip_type: str
    ip_class: str
    title: str
    status: str
    application_date: dt.date | None
    grant_date: dt.date | None
    expiry_date: dt.date | None
    self_developed: bool | None
    used_in_earlier_hte_application: bool


class CertificationOut(Schema):
    kind: str
    number: str
    valid_from: dt.date
    valid_to: dt.date | None


class HistoryOut(Schema):
    at: dt.datetime
    actor: str | None
    action: str
    obj_type: str
    obj_id: str
    before: dict | None
    after: dict | None
    note: str

    @staticmethod
    def resolve_actor(obj: Any) -> str | None:
        return obj.actor.username if obj.actor_id else None


class RowErrorOut(Schema):
    sheet: str | None
    row: int | None
    column: str | None
    value: str | None
    reason: str


class ImportOut(Schema):
    ok: bool
    #: entity -> {"created": n, "updated": n, "unchanged": n}
    counts: dict[str, dict[str, int]]
    errors: list[RowErrorOut]


class SearchParams(Schema):
    q: str | None = None  # name or credit code, partial
    street: str | None = None
    industry: str | None = None  # industry code prefix, e.g. "65"
    certification: str | None = None  # kind valid today: hte, tsme, …
    page: int = 1
    page_size: int = 50


@router.post(
    "/import",
    response={200: ImportOut, 422: ImportOut},
    summary="Import enterprises, fiscal years, IP and certifications (staff)",
)
def import_file(request: HttpRequest, file: File[UploadedFile]) -> JsonResponse:
    """A file with any bad row is rejected whole (422, every bad row listed) and nothing is written."""
    access.require(request.user, "import_registry")
    result = services.registry_import(file=file, filename=file.name, actor=request.user)
    body = {
        "ok": result.ok,
        "counts": result.counts,
        "errors": [
            {
                "sheet": e.sheet,
                "row": e.row,
                "column": e.column,
                "value": None if e.value is None else str(e.value),
                "reason": str(e.reason),
            }
            for e in result.errors
        ],
    }
    # A plain JsonResponse: the body is already plain data, and this works with
    # every django-ninja the project allows (tuples are deprecated, Status is new).
    return JsonResponse(body, status=200 if result.ok else 422)


@router.get("", response=EnterprisePage, summary="List and search enterprises")
def enterprise_list(request: HttpRequest, params: Query[SearchParams]) -> dict[str, Any]:
    """Staff, auditors and admins see every enterprise; an enterprise user only their own."""
    rows = access.restrict(
        request.user,
        selectors.enterprise_list(
            search=params.q or "",
            street=params.street or "",
            industry_code=params.industry or "",
            certification=params.certification or "",
        ),
    )
    paginator = Paginator(rows, max(1, min(params.page_size, 200)))
    page = paginator.get_page(params.page)
    return {
        "count": paginator.count,
        "page": page.number,
        "pages": paginator.num_pages,
        "items": list(page),
    }


@router.get("/{credit_code}", response=EnterpriseOut, summary="One enterprise")
def enterprise_get(request: HttpRequest, credit_code: str) -> Any:
    return access.enterprise_for_view(request.user, credit_code)


@router.patch("/{credit_code}", response=EnterpriseOut, summary="Change an enterprise's basic data")
def enterprise_patch(request: HttpRequest, credit_code: str, payload: EnterprisePatch) -> Any:
    enterprise = access.enterprise_for_edit(request.user, credit_code)
    allowed = (
        STAFF_FIELDS
        if roles.has_ability(request.user, "edit_any_enterprise")
        else ENTERPRISE_USER_FIELDS
    )
    sent = payload.dict(exclude_unset=True)
    for field in sent:
        if field not in allowed:
            raise KechuangError(
                f"{field} 仅限科委工作人员修改 / may only be changed by commission staff",
                field=field,
            )
    if sent.get("registration_date") is not None:
        check_day(sent["registration_date"], "registration_date")
    changes = {k: v for k, v in sent.items() if getattr(enterprise, k) != v}
    return services.enterprise_update(actor=request.user, enterprise=enterprise, **changes)


@router.get("/{credit_code}/fiscal-years", response=list[FiscalYearOut], summary="Fiscal years")
def fiscal_years(request: HttpRequest, credit_code: str) -> Any:
    return access.enterprise_for_view(request.user, credit_code).fiscal_years.order_by("year")


@router.put(
    "/{credit_code}/fiscal-years/{year}",
    response=FiscalYearOut,
    summary="Create or replace one fiscal year's figures",
)
def fiscal_year_put(
    request: HttpRequest,
    credit_code: str,
    payload: FiscalYearIn,
    year: int = Path(..., ge=1949, le=2100),
) -> Any:
    enterprise = access.enterprise_for_edit(request.user, credit_code)
    figures = {f: getattr(payload, f) for f in FISCAL_YEAR_FIELDS}
    return services.fiscal_year_set(actor=request.user, enterprise=enterprise, year=year, **figures)


@router.get("/{credit_code}/ip", response=list[IPAssetOut], summary="IP assets")
def ip_assets(request: HttpRequest, credit_code: str) -> Any:
    return access.enterprise_for_view(request.user, credit_code).ip_assets.order_by("number")


@router.get(
    "/{credit_code}/certifications", response=list[CertificationOut], summary="Certifications"
)
def certifications(request: HttpRequest, credit_code: str) -> Any:
    enterprise = access.enterprise_for_view(request.user, credit_code)
    return enterprise.certifications.order_by("valid_from")


@router.get("/{credit_code}/history", response=list[HistoryOut], summary="Change history")
def history(request: HttpRequest, credit_code: str) -> Any:
    enterprise = access.enterprise_for_view(request.user, credit_code)
    return selectors.enterprise_history(enterprise=enterprise)[:500]
