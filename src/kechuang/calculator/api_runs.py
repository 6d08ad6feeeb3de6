"""免申即享 runs in the REST API (mounted at ``/api/mianshen``).

Staff and admins start, read, review and confirm runs; auditors read them; an
enterprise token reads and accepts only its own enterprise's offers. Only an admin
publishes a reform's values as the law in force. Every endpoint calls ``access_runs``
as the pages do.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema

from kechuang.calculator import access_runs, selectors_runs, services_runs
from kechuang.calculator.models_runs import MianshenResult, MianshenRun

router = Router(tags=["mianshen"])


class RunIn(Schema):
    policies: list[str]
    as_of: dt.date
    scope: dict[str, str] = {}


class RunOut(Schema):
    id: int
    policies: list[str]
    as_of: dt.date
    scope: dict[str, str]
    status: str
    step: str
    steps_done: int
    steps_total: int
    facts_count: int
    facts_hash: str
    policy_hashes: dict[str, str]
    parameters: dict[str, Any]
    error: str
    duration_ms: int | None = None
    summary: list[dict[str, Any]] = []


class ResultOut(Schema):
    id: int
    credit_code: str
    policy_id: str
    verdict: str
    benefit: Decimal | None
    payable: Decimal | None
    stacking_note: str
    missing_fields: list[str]
    excluded: bool
    exclusion_reason: str
    #: Computed again from the run's kept facts and recorded parameters, and checked
    #: against the stored decision: only when asked for (``outputs=true``) in a list.
    outputs: dict[str, Any] | None = None


class ExcludeIn(Schema):
    reason: str


class AcceptIn(Schema):
    bank_name: str
    bank_account: str


class PublishIn(Schema):
    #: The reform's changed parameters to publish.
    parameters: list[str]
    effective_from: dt.date | None = None
    effective_until: dt.date | None = None
    document_number: str = ""
    article: str = ""
    reason: str = ""


class PublicationOut(Schema):
    id: int
    policy_id: str
    parameter: str
    value: Decimal
    previous_value: str
    effective_from: dt.date
    effective_until: dt.date | None
    document_number: str
    article: str
    reason: str
    reform_id: int | None
    published_by: str
    published_at: dt.datetime
    withdrawn_at: dt.datetime | None


def _publication_out(p: Any) -> dict[str, Any]:
    out = {f: getattr(p, f) for f in PublicationOut.model_fields if f != "published_by"}
    out["published_by"] = p.published_by.get_username()
    return out


class OfferOut(Schema):
    id: int
    policy_id: str
    amount: Decimal
    status: str
    as_of: dt.date


def _run_out(run: MianshenRun) -> dict[str, Any]:
    out = {f: getattr(run, f) for f in RunOut.model_fields if hasattr(run, f) and f != "summary"}
    out["id"] = run.pk
    out["summary"] = [
        {**s, "counts": dict(s["counts"]), "payable": str(s["payable"])}
        for s in selectors_runs.run_summary(run)
    ]
    return out


@router.post("/runs", response={201: RunOut}, summary="Queue a 免申即享 run")
def run_start(request: HttpRequest, payload: RunIn):
    access_runs.require_manage(request.user)
    run = services_runs.mianshen_run_start(
        policies=payload.policies, as_of=payload.as_of, scope=payload.scope, actor=request.user
    )
    run.refresh_from_db()
    return 201, _run_out(run)


@router.get("/runs/{run_id}", response=RunOut, summary="A run: progress, what it read, summary")
def run_get(request: HttpRequest, run_id: int):
    access_runs.require_view(request.user)
    services_runs.mianshen_runs_mark_interrupted()
    return _run_out(get_object_or_404(MianshenRun, pk=run_id))


def _result_out(run: MianshenRun, r: MianshenResult, outputs: bool) -> dict[str, Any]:
    return {
        "id": r.pk, "credit_code": r.credit_code, "policy_id": r.policy_id, "verdict": r.verdict,
        "benefit": r.benefit, "payable": r.payable, "stacking_note": r.stacking_note,
        "missing_fields": [f for f in r.missing_fields.split(",") if f],
        "excluded": r.excluded, "exclusion_reason": r.exclusion_reason,
        "outputs": selectors_runs.result_outputs(run, r) if outputs else None,
    }


#: Outputs are evaluated again per result (1-2 ms for hte): a page of them stays short.
MAX_RESULTS_WITH_OUTPUTS = 500


@router.get("/runs/{run_id}/results", response=list[ResultOut], summary="A run's results")
def run_results(
    request: HttpRequest, run_id: int, policy: str = "", verdict: str = "",
    offset: int = Query(0, ge=0, le=10**9), limit: int = Query(500, ge=1, le=5000),
    outputs: bool = False,
):
    access_runs.require_view(request.user)
    run = get_object_or_404(MianshenRun, pk=run_id)
    cap = MAX_RESULTS_WITH_OUTPUTS if outputs else 5000
    qs = selectors_runs.run_results(run, policy=policy, verdict=verdict)[offset : offset + min(limit, cap)]
    return [_result_out(run, r, outputs) for r in qs]


@router.get(
    "/runs/{run_id}/results/{result_id}", response=ResultOut,
    summary="One result with its outputs, checked against the stored decision",
)
def run_result(request: HttpRequest, run_id: int, result_id: int):
    access_runs.require_view(request.user)
    run = get_object_or_404(MianshenRun, pk=run_id)
    return _result_out(run, get_object_or_404(MianshenResult, pk=result_id, run=run), True)


@router.post("/runs/{run_id}/results/{result_id}/exclude", response=dict, summary="Exclude with a reason")
def run_exclude(request: HttpRequest, run_id: int, result_id: int, payload: ExcludeIn):
    access_runs.require_manage(request.user)
    result = get_object_or_404(MianshenResult, pk=result_id, run_id=run_id)
    result = services_runs.mianshen_result_exclude(result=result, reason=payload.reason, actor=request.user)
    return {"id": result.pk, "excluded": result.excluded}


@router.post("/runs/{run_id}/confirm", response=dict, summary="Confirm: offers, notices, emails")
def run_confirm(request: HttpRequest, run_id: int):
    access_runs.require_manage(request.user)
    offers = services_runs.mianshen_run_confirm(run=get_object_or_404(MianshenRun, pk=run_id), actor=request.user)
    return {"offers": len(offers)}


@router.post(
    "/reforms/{reform_id}/publish",
    response={201: list[PublicationOut]},
    summary="Publish a reform's values as the law in force (admins only)",
)
def reform_publish(request: HttpRequest, reform_id: int, payload: PublishIn):
    from kechuang.calculator import services_law
    from kechuang.calculator.models_runs import Reform

    access_runs.require_view(request.user)
    access_runs.require_publish(request.user)
    reform = get_object_or_404(Reform, pk=reform_id)
    published = services_law.parameter_publish(reform=reform, actor=request.user, **payload.dict())
    return 201, [_publication_out(p) for p in published]


@router.get(
    "/publications", response=list[PublicationOut], summary="Published parameter values"
)
def publications(request: HttpRequest, policy: str | None = None):
    from kechuang.calculator import law

    access_runs.require_view(request.user)
    return [_publication_out(p) for p in law.publications(policy_id=policy or None)]


@router.get("/offers", response=list[OfferOut], summary="The caller's enterprise's offers")
def offers(request: HttpRequest):
    if not access_runs.roles.has_ability(request.user, "own_enterprise"):
        return []
    return [
        {"id": o.pk, "policy_id": o.policy_id, "amount": o.amount, "status": o.status, "as_of": o.run.as_of}
        for o in selectors_runs.offers_for_enterprise(request.user.enterprise_id)
    ]


@router.post("/offers/{offer_id}/accept", response=dict, summary="意愿确认 with the bank account")
def offer_accept(request: HttpRequest, offer_id: int, payload: AcceptIn):
    offer = access_runs.offer_for_enterprise_user(request.user, offer_id)
    record = services_runs.mianshen_offer_accept(
        offer=offer, bank_name=payload.bank_name, bank_account=payload.bank_account, actor=request.user
    )
    return {"benefit_record": record.pk, "amount": str(record.amount), "status": record.status}
