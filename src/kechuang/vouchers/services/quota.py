"""Quota: enterprises apply, staff approve or reject, unused quota expires."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from kechuang.accounts.services import audit_record
from kechuang.calculator import law
from kechuang.errors import KechuangError
from kechuang.money import FEN, parse_yuan
from kechuang.registry.models import Enterprise
from kechuang.rules import MalformedFacts, flatten
from kechuang.vouchers import access, ledger
from kechuang.vouchers.models import LedgerAccount, LedgerTransaction, Program, QuotaApplication
from kechuang.vouchers.services._common import POLICY, ZERO, _record_rejection, _today, amount_in
from kechuang.vouchers.services.ledger_accounts import quota_account, unallocated_account
from kechuang.vouchers.services.programs import _program_open


def quota_apply(
    *,
    program: Program,
    enterprise: Enterprise,
    actor: Any,
    amount: Any,
    applicant_type: str = "enterprise",
    applicant_facts: dict[str, Any] | None = None,
    today: dt.date | None = None,
) -> QuotaApplication:
    """An enterprise asks for a quota. ``applicant_facts`` are the applicant
    conditions of the policy (e.g. registered in Shanghai, technology-based SME),
    declared here and confirmed by the staff member who approves."""
    if not access.acts_for(actor, enterprise):
        raise PermissionDenied("not this enterprise")
    _program_open(program, _today(today))
    amount = amount_in(amount)
    if applicant_type not in QuotaApplication.ApplicantType.values:
        raise KechuangError(
            f"未知申请主体 / unknown applicant type {applicant_type!r}", "applicant_type"
        )
    applicant_facts = _check_applicant_facts(applicant_facts or {}, _today(today))
    app = QuotaApplication.objects.create(
        program=program,
        enterprise=enterprise,
        applicant_type=applicant_type,
        requested_amount=amount,
        submitted_by=actor,
        applicant_facts=applicant_facts or {},
    )
    audit_record(
        actor=actor,
        action="voucher.quota_apply",
        obj_type="voucher_quota_application",
        obj_id=app.pk,
        before=None,
        after={
            "program": program.pk,
            "enterprise": enterprise.credit_code,
            "amount": amount,
            "applicant_type": applicant_type,
            "applicant_facts": app.applicant_facts,
        },
    )
    return app


def _decimal_text(value: Any) -> str:
    # Exactly as sent: the engine reads the text of a JSON number as that number.
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)
    raise TypeError(f"not JSON: {value!r}")


def _check_applicant_facts(facts: Any, day: dt.date) -> dict[str, Any]:
    """Refuse declared facts the rules engine cannot read (a text where a number or an
    object belongs), naming the field, before they are stored and decided on later; the
    facts as JSON stores them (the API reads numbers as exact Decimals)."""
    if not isinstance(facts, dict):
        raise KechuangError("申请主体条件应为对象 / applicant facts must be an object", "applicant_facts")
    try:
        flatten(facts, day)
        return json.loads(json.dumps(facts, default=_decimal_text, allow_nan=False))
    except MalformedFacts as exc:
        raise KechuangError(
            f"申请主体条件格式错误 / applicant facts: {exc.field}: {exc.reason}", "applicant_facts"
        ) from None
    except (TypeError, ValueError):  # a value JSON cannot hold (NaN, a set, an object)
        raise KechuangError(
            "申请主体条件含无法保存的值 / applicant facts hold a value JSON cannot store",
            "applicant_facts",
        ) from None


def policy_annual_cap(applicant_type: str, scheme: str, as_of: dt.date) -> Decimal:
    """The policy's annual cap for this applicant type, as the rules engine states it."""
    decision = law.evaluate(POLICY, {"scheme": scheme, "applicant_type": applicant_type}, as_of)
    cap = decision.to_dict().get("annual_cap")
    if cap is None:
        raise KechuangError(
            "规则引擎未给出年度上限 / the policy gives no annual cap", "applicant_type"
        )
    return parse_yuan(cap)


def quota_cap(program: Program, applicant_type: str) -> Decimal:
    """The stricter of the program's own cap and the policy's annual cap."""
    own = program.per_team_cap if applicant_type == "startup_team" else program.per_enterprise_cap
    return min(own, policy_annual_cap(applicant_type, program.scheme, program.valid_from))


def issued_to(program: Program, enterprise: Enterprise) -> Decimal:
    return (
        QuotaApplication.objects.filter(
            program=program, enterprise=enterprise, status=QuotaApplication.Status.APPROVED
        ).aggregate(total=Sum("approved_amount"))["total"]
        or ZERO
    ).quantize(FEN)


def quota_approve(
    *,
    application: QuotaApplication,
    actor: Any,
    amount: Any,
    idempotency_key: str,
    reason: str = "",
    today: dt.date | None = None,
) -> QuotaApplication:
    """Approve ``amount`` (at most what was asked) and issue it to the enterprise's
    quota account. Refuses an amount above the program's remaining budget or the
    enterprise's remaining cap (the stricter of program and policy caps)."""
    access.require_staff(actor)
    amount = amount_in(amount)
    req = ledger.request_hash(
        {"op": "quota_approve", "application": application.pk, "amount": amount}
    )
    if ledger.find(idempotency_key, req) is not None:
        return QuotaApplication.objects.get(pk=application.pk)
    program = application.program
    with transaction.atomic():
        quota = quota_account(program, application.enterprise)
        unallocated = unallocated_account(program)
        # Two approvals for one enterprise (or one program) at once would both
        # read the same remaining cap and budget and together exceed them: hold
        # the enterprise's quota account and the program's unallocated account.
        ledger.lock([quota, unallocated])
        app = QuotaApplication.objects.select_for_update().get(pk=application.pk)
        if ledger.find(idempotency_key, req) is not None:
            return app
        _program_open(program, _today(today))
        if app.status != QuotaApplication.Status.SUBMITTED:
            raise KechuangError("该申请已处理 / this application was already decided")
        if amount > app.requested_amount:
            raise KechuangError(
                "批准额度不能高于申请额度 / cannot approve more than was requested", "amount"
            )
        cap_left = quota_cap(program, app.applicant_type) - issued_to(program, app.enterprise)
        if amount > cap_left:
            raise KechuangError(
                f"超过该企业剩余上限 {max(cap_left, ZERO)} 元 / above the enterprise's remaining cap",
                "amount",
            )
        budget_left = ledger.balances([unallocated])[unallocated.pk]
        if amount > budget_left:
            raise KechuangError(
                f"超过项目剩余预算 {budget_left} 元 / above the program's remaining budget",
                "amount",
            )
        tx = ledger.post(
            legs=[ledger.debit(quota, amount), ledger.credit(unallocated, amount)],
            idempotency_key=idempotency_key,
            actor=actor,
            req_hash=req,
            memo=f"额度发放 / quota issued, application #{app.pk}",
        )
        app.status = QuotaApplication.Status.APPROVED
        app.approved_amount = amount
        app.reason = reason.strip()
        app.decided_by = actor
        app.decided_at = timezone.now()
        app.transaction = tx
        app.save(
            update_fields=[
                "status",
                "approved_amount",
                "reason",
                "decided_by",
                "decided_at",
                "transaction",
            ]
        )
        audit_record(
            actor=actor,
            action="voucher.quota_approve",
            obj_type="voucher_quota_application",
            obj_id=app.pk,
            before={"status": "submitted", "requested": app.requested_amount},
            after={
                "status": "approved",
                "amount": amount,
                "transaction": tx.pk,
                "reason": app.reason,
            },
        )
    return app


def quota_reject(*, application: QuotaApplication, actor: Any, reason: str) -> QuotaApplication:
    access.require_staff(actor)
    if not reason.strip():
        raise KechuangError("驳回须说明理由 / a rejection needs a reason", "reason")
    with transaction.atomic():
        app = QuotaApplication.objects.select_for_update().get(pk=application.pk)
        if app.status != QuotaApplication.Status.SUBMITTED:
            raise KechuangError("该申请已处理 / this application was already decided")
        _record_rejection(
            app,
            status=QuotaApplication.Status.REJECTED,
            actor=actor,
            reason=reason,
            action="voucher.quota_reject",
            obj_type="voucher_quota_application",
        )
    return app


def quota_expire(
    *, program: Program, actor: Any = None, today: dt.date | None = None
) -> list[LedgerTransaction]:
    """After the validity period, move every enterprise's unused quota back to
    unallocated, one transaction per account (key
    ``kechuang:expire:<program>:<account>``, a prefix no client may use, so running it
    twice moves nothing twice). Money already committed to orders stays committed:
    those orders may still be delivered and redeemed."""
    if actor is not None:
        access.require_staff(actor)
    if _today(today) <= program.valid_until:
        raise KechuangError("项目尚在有效期内 / the program is still valid", "program")
    posted = []
    unallocated = unallocated_account(program)
    for account in LedgerAccount.objects.filter(
        program=program, kind=LedgerAccount.Kind.QUOTA
    ).order_by("pk"):
        with transaction.atomic():
            # An order applying vouchers at this moment would spend quota we are about to return.
            ledger.lock([account, unallocated])
            left = ledger.balances([account])[account.pk]
            if left <= 0:
                continue
            tx = ledger.post(
                legs=[ledger.debit(unallocated, left), ledger.credit(account, left)],
                idempotency_key=f"{ledger.SYSTEM_PREFIX}expire:{program.pk}:{account.pk}",
                system=True,
                actor=actor,
                memo=f"额度到期收回 / unused quota expired, {account.enterprise_id}",
            )
            posted.append(tx)
    newly = Program.objects.filter(pk=program.pk, expired_at__isnull=True).update(
        expired_at=timezone.now()
    )
    if not (posted or newly):
        return posted  # a daily run after the first moves nothing: nothing to record
    audit_record(
        actor=actor,
        action="voucher.quota_expire",
        obj_type="voucher_program",
        obj_id=program.pk,
        before=None,
        after={
            "transactions": [t.pk for t in posted],
            "returned": sum((t.entries.first().amount for t in posted), ZERO),
        },
    )
    return posted
