"""Everything that changes voucher data. Each service is one transaction, checks
who may act (through ``access``) and what the state allows, and writes the audit
log. Services that move money take an ``idempotency_key``: they look it up
first, so a replayed request returns the original result and moves nothing.

The subsidy ratio and the policy's annual caps come from the rules engine's
``voucher`` policy (RULES.md §5), never from this module.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from kechuang.accounts.services import audit_entries, audit_record
from kechuang.calculator import law
from kechuang.errors import KechuangError, checked_text
from kechuang.money import FEN, parse_yuan
from kechuang.registry.models import Enterprise
from kechuang.rules import MalformedFacts, Policy, flatten
from kechuang.vouchers import access, ledger, prepared
from kechuang.vouchers.models import (
    Claim,
    Institution,
    InstitutionMember,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Offering,
    Program,
    QuotaApplication,
    ServiceCategory,
    ServiceOrder,
    SettlementBatch,
)
from kechuang.vouchers.uploads import check_delivery_file

POLICY = "voucher"
#: Which ratio timeline of the voucher policy each scheme reads (the policy's
#: ``ratio`` derivation); used to record the entry behind each subsidy.
RATIO_PARAMETER = {
    "district_service_voucher": "district_ratio",
    "shanghai_municipal": "municipal_ratio",
}
ZERO = Decimal("0.00")


def _today(today: dt.date | None) -> dt.date:
    return today or timezone.localdate()


def amount_in(value: Any, field: str = "amount") -> Decimal:
    """A positive yuan amount with at most two decimals, or a clear refusal."""
    amount = parse_yuan(value, field=field)
    if amount is None:
        raise KechuangError("请填写金额 / an amount is required", field)
    if amount <= 0:
        raise KechuangError("金额须大于零 / the amount must be greater than zero", field)
    if amount >= Decimal("1e12"):
        # DecimalField(max_digits=14, decimal_places=2) holds less than 10^12 yuan.
        raise KechuangError("金额过大 / the amount is too large", field)
    return amount


# ---------------------------------------------------------------- accounts


def _account(program: Program, kind: str, **owner: Any) -> LedgerAccount:
    account, _ = LedgerAccount.objects.get_or_create(program=program, kind=kind, **owner)
    return account


def quota_account(program: Program, enterprise: Enterprise) -> LedgerAccount:
    return _account(program, LedgerAccount.Kind.QUOTA, enterprise=enterprise)


def unallocated_account(program: Program) -> LedgerAccount:
    return _account(program, LedgerAccount.Kind.UNALLOCATED)


# ---------------------------------------------------------------- programs


def program_create(
    *,
    year: int,
    name: str,
    budget: Any,
    per_enterprise_cap: Any,
    per_team_cap: Any,
    valid_from: dt.date,
    valid_until: dt.date,
    categories: list[ServiceCategory],
    actor: Any,
    idempotency_key: str,
    scheme: str = "district_service_voucher",
) -> Program:
    """Create a year's program and post its budget from the appropriation to unallocated."""
    access.require_staff(actor)
    if not isinstance(year, int) or not 1900 <= year <= 2999:
        raise KechuangError(f"年度应为四位年份 / a year has four digits: {year!r}", "year")
    name = checked_text(Program, "name", (name or "").strip())
    if not name:
        raise KechuangError("请填写项目名称 / a name is required", "name")
    budget = amount_in(budget, "budget")
    per_enterprise_cap = amount_in(per_enterprise_cap, "per_enterprise_cap")
    per_team_cap = amount_in(per_team_cap, "per_team_cap")
    if valid_until < valid_from:
        raise KechuangError(
            "有效期止不能早于有效期起 / validity ends before it starts", "valid_until"
        )
    if scheme not in RATIO_PARAMETER:
        raise KechuangError(f"未知券种 / unknown scheme {scheme!r}", "scheme")
    req = ledger.request_hash(
        {
            "op": "program_create",
            "year": year,
            "name": name,
            "budget": budget,
            "enterprise_cap": per_enterprise_cap,
            "team_cap": per_team_cap,
            "from": valid_from,
            "until": valid_until,
            "scheme": scheme,
            # A replay with other categories is another request, not the same program.
            "categories": sorted(c.code for c in categories),
        }
    )
    with transaction.atomic():
        existing = ledger.find(idempotency_key, req)
        if existing is not None:
            return existing.program
        program = Program.objects.create(
            year=year,
            name=name,
            budget=budget,
            per_enterprise_cap=per_enterprise_cap,
            per_team_cap=per_team_cap,
            valid_from=valid_from,
            valid_until=valid_until,
            scheme=scheme,
        )
        program.categories.set(categories)
        appropriation = _account(program, LedgerAccount.Kind.APPROPRIATION)
        unallocated = unallocated_account(program)
        tx = ledger.post(
            legs=[ledger.debit(unallocated, budget), ledger.credit(appropriation, budget)],
            idempotency_key=idempotency_key,
            actor=actor,
            req_hash=req,
            memo=f"项目预算 / program budget {program}",
        )
        if tx.replayed:
            # The same request, sent twice at once, committed first: drop this
            # copy of the program (nothing else references it yet).
            transaction.set_rollback(True)
            return tx.program
        audit_record(
            actor=actor,
            action="voucher.program_create",
            obj_type="voucher_program",
            obj_id=program.pk,
            before=None,
            after={
                "year": year,
                "name": name,
                "budget": budget,
                "per_enterprise_cap": per_enterprise_cap,
                "per_team_cap": per_team_cap,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "categories": [c.code for c in categories],
            },
        )
    return program


def program_budget_adjust(
    *, program: Program, delta: Any, actor: Any, idempotency_key: str, reason: str
) -> Program:
    """Add to (追加) or take back from the program's budget. An increase posts
    appropriation → unallocated; a decrease posts it back, and only out of money
    not yet issued (the ledger refuses to take unallocated below zero)."""
    access.require_staff(actor)
    if not reason.strip():
        raise KechuangError("调整预算须说明理由 / a budget adjustment needs a reason", "reason")
    text = str(delta).strip()
    negative = text.startswith("-")
    amount = amount_in(text[1:] if negative else text, "delta")
    req = ledger.request_hash(
        {"op": "program_budget_adjust", "program": program.pk, "delta": text, "reason": reason}
    )
    if ledger.find(idempotency_key, req) is not None:
        return Program.objects.get(pk=program.pk)
    with transaction.atomic():
        # Two adjustments at once would each write budget = old + delta from the
        # same old value; the row lock makes the second read the first's result.
        program = Program.objects.select_for_update().get(pk=program.pk)
        if ledger.find(idempotency_key, req) is not None:
            return program
        after = program.budget - amount if negative else program.budget + amount
        if after <= 0:
            raise KechuangError(
                "预算须大于零 / the budget would not stay above zero", "delta"
            )
        if after >= Decimal("1e12"):
            # DecimalField(max_digits=14, decimal_places=2) holds less than 10^12 yuan.
            raise KechuangError("预算过大 / the budget would be too large", "delta")
        appropriation = _account(program, LedgerAccount.Kind.APPROPRIATION)
        unallocated = unallocated_account(program)
        legs = (
            [ledger.debit(appropriation, amount), ledger.credit(unallocated, amount)]
            if negative
            else [ledger.debit(unallocated, amount), ledger.credit(appropriation, amount)]
        )
        tx = ledger.post(
            legs=legs,
            idempotency_key=idempotency_key,
            actor=actor,
            req_hash=req,
            memo=f"预算调整 / budget adjusted by {'-' if negative else '+'}{amount}",
        )
        before = program.budget
        program.budget = after
        program.save(update_fields=["budget"])
        audit_record(
            actor=actor,
            action="voucher.program_budget_adjust",
            obj_type="voucher_program",
            obj_id=program.pk,
            before={"budget": before},
            after={"budget": program.budget, "transaction": tx.pk},
            note=reason.strip(),
        )
    return program


def _program_open(program: Program, today: dt.date) -> None:
    if program.expired_at is not None or today > program.valid_until:
        raise KechuangError("项目已过有效期 / the program has expired", "program")
    if today < program.valid_from:
        raise KechuangError("项目尚未开始 / the program has not started yet", "program")


# ---------------------------------------------------------------- institutions


def institution_apply(
    *,
    actor: Any,
    name: str,
    credit_code: str,
    contact: str = "",
    bank_name: str = "",
    bank_account: str = "",
) -> Institution:
    """An institution user applies for their institution to join the platform."""
    if not access.is_institution_user(actor):
        raise PermissionDenied("institution users only")
    if InstitutionMember.objects.filter(user=actor).exclude(
        institution__status=Institution.Status.REJECTED
    ).exists():
        raise KechuangError(
            "该用户已属于一家服务机构 / this user already belongs to an institution"
        )
    code = (credit_code or "").strip().upper()
    name, contact = (name or "").strip(), (contact or "").strip()
    bank_name = (bank_name or "").strip()
    bank_account = "".join((bank_account or "").split())
    for field, value in (("name", name), ("contact", contact), ("bank_name", bank_name)):
        checked_text(Institution, field, value)
    if bank_account and not (bank_account.isdigit() and 8 <= len(bank_account) <= 30):
        # It goes into the payment file finance staff pay from: digits only.
        raise KechuangError(
            "银行账号应为8–30位数字 / bank account: 8-30 digits", "bank_account"
        )
    if not name or len(code) != 18:
        raise KechuangError(
            "请填写机构名称和18位统一社会信用代码 / name and 18-character credit code required",
            "credit_code",
        )
    if Institution.objects.filter(credit_code=code).exclude(
        status=Institution.Status.REJECTED
    ).exists():
        raise KechuangError("该机构已登记 / this institution is already registered", "credit_code")
    with transaction.atomic():
        # A rejected application holds neither its user nor its credit code: the user may
        # apply again, and a code someone else applied with in vain goes to whoever
        # applies with it next (a rejected institution has no offering, order or claim).
        rejected = Institution.objects.filter(
            Q(credit_code=code) | Q(institutionmember__user=actor),
            status=Institution.Status.REJECTED,
        ).values_list("pk", flat=True)
        # Locked by id: PostgreSQL takes no FOR UPDATE over the join's DISTINCT.
        for old in Institution.objects.select_for_update().filter(
            pk__in=set(rejected), status=Institution.Status.REJECTED
        ):
            audit_record(
                actor=actor,
                action="voucher.institution_release",
                obj_type="voucher_institution",
                obj_id=old.pk,
                before={"name": old.name, "credit_code": old.credit_code, "status": old.status,
                        "reason": old.decision_reason},
                after=None,
            )
            InstitutionMember.objects.filter(institution=old).delete()
            old.delete()
        inst = Institution.objects.create(
            name=name,
            credit_code=code,
            contact=contact,
            bank_name=bank_name,
            bank_account=bank_account,
        )
        InstitutionMember.objects.create(user=actor, institution=inst)
        audit_record(
            actor=actor,
            action="voucher.institution_apply",
            obj_type="voucher_institution",
            obj_id=inst.pk,
            before=None,
            after={"name": inst.name, "credit_code": code},
        )
    return inst


def institution_decide(
    *, institution: Institution, actor: Any, approve: bool, reason: str = ""
) -> Institution:
    access.require_staff(actor)
    if not approve and not reason.strip():
        raise KechuangError("驳回须说明理由 / a rejection needs a reason", "reason")
    with transaction.atomic():
        # Two staff deciding the same application at once: the second sees the first's decision.
        inst = Institution.objects.select_for_update().get(pk=institution.pk)
        if inst.status != Institution.Status.PENDING:
            raise KechuangError("该申请已处理 / this application was already decided")
        inst.status = Institution.Status.APPROVED if approve else Institution.Status.REJECTED
        inst.decision_reason = reason.strip()
        inst.decided_at = timezone.now()
        inst.save(update_fields=["status", "decision_reason", "decided_at"])
        audit_record(
            actor=actor,
            action="voucher.institution_decide",
            obj_type="voucher_institution",
            obj_id=inst.pk,
            before={"status": "pending"},
            after={"status": inst.status, "reason": inst.decision_reason},
        )
    return inst


def offering_create(
    *, institution: Institution, actor: Any, category: ServiceCategory, name: str, price: Any
) -> Offering:
    if access.institution_of(actor) != institution and not access.is_staff(actor):
        raise PermissionDenied("not this institution")
    if institution.status != Institution.Status.APPROVED:
        raise KechuangError("机构尚未通过审核 / the institution is not approved", "institution")
    price = amount_in(price, "price")
    name = checked_text(Offering, "name", (name or "").strip())
    if not name:
        raise KechuangError("请填写服务名称 / a name is required", "name")
    offering = Offering.objects.create(
        institution=institution, category=category, name=name.strip(), price=price
    )
    audit_record(
        actor=actor,
        action="voucher.offering_create",
        obj_type="voucher_offering",
        obj_id=offering.pk,
        before=None,
        after={
            "institution": institution.pk,
            "category": category.code,
            "name": offering.name,
            "price": price,
        },
    )
    return offering


# ---------------------------------------------------------------- quota


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


def _record_rejection(
    obj: Any, *, status: str, actor: Any, reason: str, action: str, obj_type: str
) -> None:
    """Mark a submitted (and locked) application or claim rejected, and audit it."""
    obj.status = status
    obj.reason = reason.strip()
    obj.decided_by = actor
    obj.decided_at = timezone.now()
    obj.save(update_fields=["status", "reason", "decided_by", "decided_at"])
    audit_record(
        actor=actor,
        action=action,
        obj_type=obj_type,
        obj_id=obj.pk,
        before={"status": "submitted"},
        after={"status": "rejected", "reason": obj.reason},
    )


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


# ---------------------------------------------------------------- orders


def order_create(
    *,
    program: Program,
    enterprise: Enterprise,
    offering: Offering,
    actor: Any,
    contract_amount: Any,
    order_date: dt.date,
    start_date: dt.date,
    end_date: dt.date,
    contract_number: str = "",
    today: dt.date | None = None,
) -> ServiceOrder:
    """Record a service contract between the enterprise and an approved institution."""
    if not access.acts_for(actor, enterprise):
        raise PermissionDenied("not this enterprise")
    amount = amount_in(contract_amount, "contract_amount")
    contract_number = checked_text(ServiceOrder, "contract_number", (contract_number or "").strip())
    _program_open(program, _today(today))
    if offering.institution.status != Institution.Status.APPROVED:
        raise KechuangError(
            "服务机构未通过审核 / the institution is not an approved provider", "offering"
        )
    if not offering.active:
        raise KechuangError("该服务已下架 / this service is no longer offered", "offering")
    if not program.categories.filter(pk=offering.category_id).exists():
        raise KechuangError(
            "该服务类别不在本项目支持范围 / this service category is not eligible", "offering"
        )
    if not (program.valid_from <= order_date <= program.valid_until):
        raise KechuangError(
            "合同日期不在项目有效期内 / the order date is outside the program's validity",
            "order_date",
        )
    if end_date < start_date:
        raise KechuangError(
            "服务结束日期早于开始日期 / the service ends before it starts", "end_date"
        )
    order = ServiceOrder.objects.create(
        program=program,
        enterprise=enterprise,
        institution=offering.institution,
        offering=offering,
        contract_number=contract_number,
        contract_amount=amount,
        order_date=order_date,
        start_date=start_date,
        end_date=end_date,
        created_by=actor,
    )
    audit_record(
        actor=actor,
        action="voucher.order_create",
        obj_type="voucher_order",
        obj_id=order.pk,
        before=None,
        after={
            "program": program.pk,
            "enterprise": enterprise.credit_code,
            "institution": offering.institution_id,
            "offering": offering.pk,
            "contract_amount": amount,
            "order_date": order_date,
        },
    )
    return order


@dataclass(frozen=True)
class ApplyState:
    """What :func:`order_voucher_apply` checks, read in one statement under its locks."""

    #: The request hash already posted under the idempotency key, or None.
    replay_hash: str | None
    #: Debit balance of the enterprise's quota account in the program.
    quota_left: Decimal
    #: Subsidy already committed to the enterprise's orders dated in the order's year.
    used_this_year: Decimal
    institution_approved: bool
    category_eligible: bool
    #: The latest approved quota application's applicant type and facts (None: none).
    applicant_type: str | None
    applicant_facts: dict[str, Any]


@cache
def _apply_state_sql() -> str:
    table = {
        m.__name__: connection.ops.quote_name(m._meta.db_table)
        for m in (
            LedgerAccount,
            LedgerTransaction,
            LedgerEntry,
            ServiceOrder,
            Institution,
            Offering,
            QuotaApplication,
        )
    }
    through = Program.categories.through
    categories = connection.ops.quote_name(through._meta.db_table)
    pc_program = through._meta.get_field("program").column
    pc_category = through._meta.get_field("servicecategory").column
    # The latest approved application as a derived table joined to one row, so
    # that its two columns cost one lookup, not one subquery each.
    return f"""
SELECT
  (SELECT request_hash FROM {table["LedgerTransaction"]} WHERE idempotency_key = %(key)s),
  (SELECT COALESCE(SUM(CASE WHEN side = %(debit)s THEN amount ELSE -amount END), 0)
     FROM {table["LedgerEntry"]} WHERE account_id = (
       SELECT id FROM {table["LedgerAccount"]} WHERE kind = %(quota_kind)s
        AND program_id = %(program)s AND enterprise_id = %(enterprise)s)),
  (SELECT COALESCE(SUM(subsidy_amount), 0) FROM {table["ServiceOrder"]}
     WHERE enterprise_id = %(enterprise)s AND order_date BETWEEN %(jan1)s AND %(dec31)s
       AND subsidy_amount IS NOT NULL AND status <> %(cancelled)s),
  (SELECT status FROM {table["Institution"]} WHERE id = %(institution)s),
  EXISTS (SELECT 1 FROM {categories} WHERE {pc_program} = %(program)s
            AND {pc_category} = (SELECT category_id FROM {table["Offering"]}
                                 WHERE id = %(offering)s)),
  latest.applicant_type,
  latest.applicant_facts
FROM (SELECT 1 AS one) AS one
LEFT JOIN (
  SELECT applicant_type, applicant_facts FROM {table["QuotaApplication"]}
   WHERE program_id = %(program)s AND enterprise_id = %(enterprise)s AND status = %(approved)s
   ORDER BY decided_at DESC, id DESC LIMIT 1
) AS latest ON 1 = 1
"""


def apply_state(order: ServiceOrder, idempotency_key: str) -> ApplyState:
    """Everything :func:`order_voucher_apply` checks, in one statement: the replayed
    key, the quota left, the year's vouchers used, the institution's approval, the
    category's eligibility and the latest approved application.

    Issue 6: this is the platform's busiest write, and each ORM query costs the
    client more CPU than it costs the database. Call it only while holding the
    order and the enterprise's quota rows: as its own statement it reads every
    commitment committed before the locks were granted (a subquery of the locking
    statement would read the older snapshot taken before it waited)."""
    with connection.cursor() as cur:
        prepared.execute(cur, _apply_state_sql(), _apply_state_params(order, idempotency_key))
        return _apply_state_of(cur.fetchone())


def _apply_state_params(order: ServiceOrder, idempotency_key: str) -> dict[str, Any]:
    year = order.order_date.year
    return {
        "key": ledger.check_key(idempotency_key),
        "debit": LedgerEntry.Side.DEBIT,
        "quota_kind": LedgerAccount.Kind.QUOTA,
        "enterprise": order.enterprise_id,
        "program": order.program_id,
        "jan1": dt.date(year, 1, 1),
        "dec31": dt.date(year, 12, 31),
        "cancelled": ServiceOrder.Status.CANCELLED,
        "institution": order.institution_id,
        "offering": order.offering_id,
        "approved": QuotaApplication.Status.APPROVED,
    }


def _apply_state_of(row: tuple[Any, ...]) -> ApplyState:
    replay, quota_left, used, institution, category, applicant, facts = row
    if isinstance(facts, str):
        facts = json.loads(facts)
    return ApplyState(
        replay_hash=replay,
        # SQLite sums decimals as floats: read every amount to the fen, as ledger.balances does.
        quota_left=Decimal(str(quota_left)).quantize(FEN),
        used_this_year=Decimal(str(used)).quantize(FEN),
        institution_approved=institution == Institution.Status.APPROVED,
        category_eligible=bool(category),
        applicant_type=applicant,
        applicant_facts=facts or {},
    )


def subsidy_decision(
    order: ServiceOrder, eligible_amount: Decimal, state: ApplyState, policy: Policy
) -> tuple[Decimal, dict[str, Any]]:
    """Ask the rules engine (the voucher policy in force) for the subsidy of this
    order; refuse unless eligible."""
    if state.applicant_type is None:
        raise KechuangError(
            "该企业在本项目没有已批准的额度 / no approved quota in this program", "order"
        )
    facts = {
        **state.applicant_facts,
        "scheme": order.program.scheme,
        "applicant_type": state.applicant_type,
        "order_date": order.order_date.isoformat(),
        "contract_amount": str(eligible_amount),
        # Checked by order_create: an approved institution, a category of the program.
        "service_provider_on_platform": state.institution_approved,
        "service_category_eligible": state.category_eligible,
        "voucher_used_this_year": str(state.used_this_year),
    }
    day = order.order_date
    try:
        # Lenient: a stored value the engine cannot read is an invalid fact, named below.
        row = flatten(facts, day, lenient=True)
    except MalformedFacts as exc:
        raise KechuangError(f"申请主体条件格式错误 / applicant facts: {exc}", "order") from None
    decision = law.evaluate_flat(policy, row, day).to_dict()
    if decision["verdict"] == "ineligible":
        failed = [c["id"] for c in decision["trace"]["criteria"] if c["outcome"] is False]
        raise KechuangError(f"不符合服务券条件 / not eligible: {', '.join(failed)}", "order")
    if decision["verdict"] != "eligible":
        missing = decision["missing_fields"] + decision["invalid_fields"]
        raise KechuangError(
            f"缺少资格信息 / eligibility not established: {', '.join(missing)}", "order"
        )
    return parse_yuan(decision["subsidy_amount"]), decision


# Issue 6: order_voucher_apply is the platform's busiest write. Its statements
# are plain SQL: each ORM query or save costs the client several times the CPU of
# the statement itself (compiling it, building instances), more than the
# database spends running it.


def _for_update(sql: str) -> str:
    # SQLite has no row locks (a write transaction holds the whole database).
    return f"{sql} FOR UPDATE" if connection.features.has_select_for_update else sql


@cache
def _lock_order_sql() -> str:
    qn = connection.ops.quote_name
    return _for_update(
        "SELECT program_id, enterprise_id, status, contract_amount, order_date"
        f" FROM {qn(ServiceOrder._meta.db_table)} WHERE id = %(order)s"
    )


@cache
def _lock_quota_rows_sql() -> str:
    qn = connection.ops.quote_name
    return _for_update(
        f"SELECT id, program_id FROM {qn(LedgerAccount._meta.db_table)}"
        " WHERE kind = %(kind)s AND enterprise_id = %(enterprise)s ORDER BY id"
    )


def _lock_and_read(
    order: ServiceOrder, idempotency_key: str
) -> tuple[ServiceOrder | None, LedgerAccount | None, ApplyState]:
    """Lock the order's row, then all of the enterprise's quota accounts (every
    program, in id order), then read everything the decision checks: three
    statements, one round trip on PostgreSQL.

    Returns a copy of ``order`` with what the decision reads (status, amount,
    date) as the row holds it now, or None if the row no longer belongs to the
    caller's program and enterprise (the state read is then for the caller's);
    the quota account of the order's program (None: none yet); the state.

    The copy keeps the caller's program and enterprise, not read again: no
    decision needs them read under a lock (an expiry empties the quota under the
    quota lock, so a program that has just expired reads as no quota left). The
    institution, offering and dates other than the order date are never changed
    once an order is recorded."""
    with connection.cursor() as cur:
        order_rows, quota_rows, state_rows = prepared.execute_all(
            cur,
            [
                (_lock_order_sql(), {"order": order.pk}),
                (
                    _lock_quota_rows_sql(),
                    {"kind": LedgerAccount.Kind.QUOTA, "enterprise": order.enterprise_id},
                ),
                (_apply_state_sql(), _apply_state_params(order, idempotency_key)),
            ],
        )
    if not order_rows:
        raise ServiceOrder.DoesNotExist(f"order #{order.pk}")
    program_id, enterprise_id, status, amount, order_date = order_rows[0]
    state = _apply_state_of(state_rows[0])
    if (program_id, enterprise_id) != (order.program_id, order.enterprise_id):
        return None, None, state
    locked = copy.copy(order)
    locked.status = status
    # SQLite returns decimals as numbers and dates as text.
    locked.contract_amount = Decimal(str(amount)).quantize(FEN)
    locked.order_date = (
        order_date if isinstance(order_date, dt.date) else dt.date.fromisoformat(order_date)
    )
    return locked, _quota_of(locked, quota_rows), state


def _lock_quota(order: ServiceOrder) -> LedgerAccount | None:
    """Lock all of the enterprise's quota accounts (every program), in id order;
    return the one of the order's program (None: it has none yet)."""
    with connection.cursor() as cur:
        prepared.execute(
            cur,
            _lock_quota_rows_sql(),
            {"kind": LedgerAccount.Kind.QUOTA, "enterprise": order.enterprise_id},
        )
        return _quota_of(order, cur.fetchall())


def _quota_of(order: ServiceOrder, rows: list[tuple[Any, ...]]) -> LedgerAccount | None:
    for pk, program_id in rows:
        if program_id == order.program_id:
            return LedgerAccount(
                pk=pk,
                program_id=program_id,
                kind=LedgerAccount.Kind.QUOTA,
                enterprise_id=order.enterprise_id,
            )
    return None


@cache
def _commitment_account_sql() -> str:
    qn = connection.ops.quote_name
    return (
        f"INSERT INTO {qn(LedgerAccount._meta.db_table)} (program_id, kind, order_id)"
        f" VALUES (%(program)s, %(kind)s, %(order)s) RETURNING {qn('id')}"
    )


#: The columns order_voucher_apply writes, in this order.
_APPLIED_FIELDS = (
    "status",
    "subsidy_amount",
    "enterprise_pays",
    "ratio",
    "policy_sha256",
    "ratio_since",
    "ratio_article",
    "decision",
)


@cache
def _order_applied_sql() -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(
        f"{qn(ServiceOrder._meta.get_field(name).column)} = %({name})s" for name in _APPLIED_FIELDS
    )
    return f"UPDATE {qn(ServiceOrder._meta.db_table)} SET {columns} WHERE id = %(pk)s"


def _save_applied(order: ServiceOrder) -> LedgerAccount:
    """Write the decision on the order and create its commitment account (the
    order is held and still a draft, so it has none yet): two statements, one
    round trip on PostgreSQL. Returns the account."""
    values = {
        name: ServiceOrder._meta.get_field(name).get_db_prep_save(getattr(order, name), connection)
        for name in _APPLIED_FIELDS
    }
    kind = LedgerAccount.Kind.COMMITTED
    with connection.cursor() as cur:
        account, _ = prepared.execute_all(
            cur,
            [
                (
                    _commitment_account_sql(),
                    {"program": order.program_id, "kind": kind, "order": order.pk},
                ),
                (_order_applied_sql(), {**values, "pk": order.pk}),
            ],
        )
    pk = account[0][0]
    return LedgerAccount(pk=pk, program_id=order.program_id, kind=kind, order_id=order.pk)


def order_voucher_apply(
    *,
    order: ServiceOrder,
    actor: Any,
    idempotency_key: str,
    eligible_amount: Any = None,
    today: dt.date | None = None,
) -> ServiceOrder:
    """Apply the enterprise's vouchers to an order: subsidy = the policy ratio on
    the order date × the eligible amount (rounded down to the fen by the engine),
    limited by the policy's remaining annual cap and the enterprise's quota left
    in the program. Posts quota → committed; the enterprise pays the rest.

    Returns the order as it is afterwards (a new instance; ``order`` is not
    changed), or, for a replay, as the first request left it."""
    if not access.acts_for(actor, order.enterprise):
        raise PermissionDenied("not this enterprise")
    eligible = (
        order.contract_amount
        if eligible_amount in (None, "")
        else amount_in(eligible_amount, "eligible_amount")
    )
    req = ledger.request_hash(
        {"op": "order_voucher_apply", "order": order.pk, "eligible": eligible}
    )
    ledger.check_key(idempotency_key)
    with transaction.atomic():
        # The same order applied twice at once (two keys, two tabs) would commit
        # twice: hold its row. Two orders of one enterprise applied at once would
        # both see the same quota left and the same "used this year": hold all of
        # the enterprise's quota accounts too, so that the state is read after
        # the other order's commitment is written.
        locked, quota, state = _lock_and_read(order, idempotency_key)
        if locked is None:
            # The caller's copy names another program or enterprise: read the
            # order (held already), lock and read again for the row's.
            locked = ServiceOrder.objects.select_related("program", "enterprise").get(pk=order.pk)
            quota = _lock_quota(locked)
            state = apply_state(locked, idempotency_key)
        order = locked
        program = order.program
        if quota is None:
            # No quota account in this program yet: create it empty (the order is
            # refused below), then hold the enterprise's quota rows again, in id order.
            quota_account(program, order.enterprise)
            quota = _lock_quota(order)
            state = apply_state(order, idempotency_key)
        # The key is looked up under the locks, before any check: a replay
        # returns the order as the first request left it, whatever has moved since.
        if state.replay_hash is not None:
            if state.replay_hash != req:
                raise ledger.IdempotencyConflict(idempotency_key)
            return ServiceOrder.objects.select_related("program", "enterprise").get(pk=order.pk)
        if eligible > order.contract_amount:
            raise KechuangError(
                "可补贴金额不能超过合同金额 / the eligible amount exceeds the contract",
                "eligible_amount",
            )
        _program_open(program, _today(today))
        if order.status != ServiceOrder.Status.DRAFT:
            raise KechuangError(
                "该订单已用券或已取消 / vouchers were already applied to this order", "order"
            )
        # One read of the law in force for both the decision and the ratio recorded.
        policy = law.policy_in_force(POLICY)
        engine_subsidy, decision = subsidy_decision(order, eligible, state, policy)
        quota_left = state.quota_left
        subsidy = min(engine_subsidy, quota_left)
        if subsidy <= 0:
            raise KechuangError(
                "没有可用的券额度或年度上限已用完 / no quota or annual cap left", "order"
            )
        entry = policy.parameters[RATIO_PARAMETER[program.scheme]].at(order.order_date)
        ratio = Fraction(entry.value)
        order.status = ServiceOrder.Status.VOUCHER_APPLIED
        order.subsidy_amount = subsidy
        order.enterprise_pays = order.contract_amount - subsidy
        order.ratio = str((Decimal(ratio.numerator) / Decimal(ratio.denominator)).normalize())
        order.policy_sha256 = policy.sha256
        order.ratio_since = entry.since
        order.ratio_article = entry.article[:200]
        order.decision = {
            k: decision[k]
            for k in (
                "verdict",
                "ratio",
                "annual_cap",
                "remaining_cap_before",
                "subsidy_amount",
                "enterprise_pays",
                "note",
                "policy",
            )
        }
        order.decision["eligible_amount"] = str(eligible)
        order.decision["quota_left_before"] = str(quota_left)
        # Written before the posting, in the same transaction: a refused
        # posting rolls the order back with it.
        committed = _save_applied(order)
        tx = ledger.post(
            legs=[ledger.debit(committed, subsidy), ledger.credit(quota, subsidy)],
            idempotency_key=idempotency_key,
            actor=actor,
            req_hash=req,
            memo=f"订单用券 / vouchers applied to order #{order.pk}",
            # The quota row is held since before the key lookup and the balance
            # read above; the commitment account was created in this transaction.
            locked_balances={quota.pk: quota_left, committed.pk: ZERO},
        )
        audit_entries(
            actor=actor,
            action="voucher.order_voucher_apply",
            obj_type="voucher_order",
            changes=[
                (
                    order.pk,
                    {"status": "draft"},
                    {
                        "status": order.status,
                        "subsidy": subsidy,
                        "enterprise_pays": order.enterprise_pays,
                        "ratio": order.ratio,
                        "ratio_since": entry.since,
                        "article": entry.article,
                        "policy_sha256": order.policy_sha256,
                        "transaction": tx.pk,
                    },
                )
            ],
        )
    return order


def order_cancel(
    *,
    order: ServiceOrder,
    actor: Any,
    idempotency_key: str,
    reason: str = "",
    today: dt.date | None = None,
) -> ServiceOrder:
    """Cancel an order before delivery; a voucher commitment goes back to the
    enterprise's quota (or to unallocated once the program has ended)."""
    if not (access.acts_for(actor, order.enterprise) or access.is_staff(actor)):
        raise PermissionDenied("not this enterprise")
    req = ledger.request_hash({"op": "order_cancel", "order": order.pk})
    if ledger.find(idempotency_key, req) is not None:
        return ServiceOrder.objects.get(pk=order.pk)
    with transaction.atomic():
        # A cancellation racing a delivery confirmation or a second cancellation.
        order = (
            ServiceOrder.objects.select_for_update(of=("self",))
            .select_related("program")
            .get(pk=order.pk)
        )
        if order.status == ServiceOrder.Status.CANCELLED:
            return order  # cancelling twice is cancelling once
        if order.status not in (ServiceOrder.Status.DRAFT, ServiceOrder.Status.VOUCHER_APPLIED):
            raise KechuangError(
                "已交付的订单不能取消 / only orders not yet delivered can be cancelled", "order"
            )
        before = order.status
        if order.status == ServiceOrder.Status.VOUCHER_APPLIED:
            committed = order.account
            back = ledger.balances([committed])[committed.pk]
            # Once the program has ended, quota is no longer spendable: money set free
            # goes back to the budget, also while (or before) the expiry runs.
            ended = order.program.expired_at is not None or (
                _today(today) > order.program.valid_until
            )
            target = (
                unallocated_account(order.program)
                if ended
                else quota_account(order.program, order.enterprise)
            )
            ledger.post(
                legs=[ledger.debit(target, back), ledger.credit(committed, back)],
                idempotency_key=idempotency_key,
                actor=actor,
                req_hash=req,
                memo=f"订单取消 / order #{order.pk} cancelled",
            )
        order.status = ServiceOrder.Status.CANCELLED
        order.save(update_fields=["status"])
        audit_record(
            actor=actor,
            action="voucher.order_cancel",
            obj_type="voucher_order",
            obj_id=order.pk,
            before={"status": before},
            after={"status": order.status, "reason": reason},
        )
    return order


def order_deliver(*, order: ServiceOrder, actor: Any, upload: Any) -> ServiceOrder:
    """The institution confirms delivery with a report or invoice (PDF, OFD, PNG or JPEG)."""
    if access.institution_of(actor) != order.institution:
        raise PermissionDenied("not this institution")
    kind = check_delivery_file(upload)
    with transaction.atomic():
        order = ServiceOrder.objects.select_for_update().get(pk=order.pk)
        if order.status != ServiceOrder.Status.VOUCHER_APPLIED:
            raise KechuangError(
                "只有已用券的订单可以确认交付 / only orders with vouchers applied can be delivered",
                "order",
            )
        upload.seek(0)
        order.delivery_file.save(f"order-{order.pk}.{kind}", upload, save=False)
        order.delivery_file_type = kind
        order.delivered_at = timezone.now()
        order.status = ServiceOrder.Status.DELIVERED
        order.save(update_fields=["delivery_file", "delivery_file_type", "delivered_at", "status"])
        audit_record(
            actor=actor,
            action="voucher.order_deliver",
            obj_type="voucher_order",
            obj_id=order.pk,
            before={"status": "voucher_applied"},
            after={"status": order.status, "file": order.delivery_file.name, "type": kind},
        )
    return order


# ---------------------------------------------------------------- claims and settlement


def claim_submit(*, order: ServiceOrder, actor: Any) -> Claim:
    """The institution claims the voucher share of a delivered order."""
    if access.institution_of(actor) != order.institution:
        raise PermissionDenied("not this institution")
    with transaction.atomic():
        # Two claims for one order submitted at once.
        order = ServiceOrder.objects.select_for_update().get(pk=order.pk)
        if order.status != ServiceOrder.Status.DELIVERED:
            raise KechuangError(
                "只能对已交付的订单申请兑付 / only delivered orders can be claimed", "order"
            )
        amount = ledger.balances([order.account])[order.account.pk]
        claim = Claim.objects.create(
            order=order, institution=order.institution, amount=amount, submitted_by=actor
        )
        order.status = ServiceOrder.Status.CLAIMED
        order.save(update_fields=["status"])
        audit_record(
            actor=actor,
            action="voucher.claim_submit",
            obj_type="voucher_claim",
            obj_id=claim.pk,
            before=None,
            after={"order": order.pk, "amount": amount},
        )
    return claim


def claim_approve(*, claim: Claim, actor: Any, idempotency_key: str) -> Claim:
    """Approve a claim: the order's commitment becomes payable to the institution."""
    access.require_staff(actor)
    req = ledger.request_hash({"op": "claim_approve", "claim": claim.pk})
    if ledger.find(idempotency_key, req) is not None:
        return Claim.objects.get(pk=claim.pk)
    with transaction.atomic():
        # Two staff approving the same claim at once would make it payable twice.
        claim = (
            Claim.objects.select_for_update(of=("self",))
            .select_related("order", "order__program")
            .get(pk=claim.pk)
        )
        if ledger.find(idempotency_key, req) is not None:
            return claim
        if claim.status != Claim.Status.SUBMITTED:
            raise KechuangError("该兑付申请已处理 / this claim was already decided", "claim")
        order = claim.order
        payable = _account(order.program, LedgerAccount.Kind.PAYABLE, institution=claim.institution)
        tx = ledger.post(
            legs=[ledger.debit(payable, claim.amount), ledger.credit(order.account, claim.amount)],
            idempotency_key=idempotency_key,
            actor=actor,
            req_hash=req,
            memo=f"兑付批准 / claim #{claim.pk} approved",
        )
        claim.status = Claim.Status.APPROVED
        claim.decided_by = actor
        claim.decided_at = timezone.now()
        claim.save(update_fields=["status", "decided_by", "decided_at"])
        ServiceOrder.objects.filter(pk=order.pk).update(status=ServiceOrder.Status.REDEEMED)
        audit_record(
            actor=actor,
            action="voucher.claim_approve",
            obj_type="voucher_claim",
            obj_id=claim.pk,
            before={"status": "submitted"},
            after={"status": "approved", "amount": claim.amount, "transaction": tx.pk},
        )
    return claim


def claim_reject(*, claim: Claim, actor: Any, reason: str) -> Claim:
    """Reject a claim with a reason; the money stays committed to the order, which
    returns to 'delivered' so the institution can correct and claim again."""
    access.require_staff(actor)
    if not reason.strip():
        raise KechuangError("驳回须说明理由 / a rejection needs a reason", "reason")
    with transaction.atomic():
        claim = Claim.objects.select_for_update().get(pk=claim.pk)
        if claim.status != Claim.Status.SUBMITTED:
            raise KechuangError("该兑付申请已处理 / this claim was already decided", "claim")
        ServiceOrder.objects.filter(pk=claim.order_id).update(status=ServiceOrder.Status.DELIVERED)
        _record_rejection(
            claim,
            status=Claim.Status.REJECTED,
            actor=actor,
            reason=reason,
            action="voucher.claim_reject",
            obj_type="voucher_claim",
        )
    return claim


def settlement_batch_create(
    *, program: Program, actor: Any, idempotency_key: str
) -> SettlementBatch:
    """Pay every approved, unbatched claim of the program in one batch: one
    transaction moving payable → paid per institution; the claims and their
    orders are marked paid. The batch's payment file is ``selectors.settlement_workbook``."""
    access.require_staff(actor)
    req = ledger.request_hash({"op": "settlement_batch_create", "program": program.pk})
    existing = ledger.find(idempotency_key, req)
    if existing is not None:
        return SettlementBatch.objects.get(transaction=existing)
    with transaction.atomic():
        # Two batches created at once would both pick up the same approved claims.
        claims = list(
            Claim.objects.select_for_update()
            .filter(order__program=program, status=Claim.Status.APPROVED, batch__isnull=True)
            .order_by("pk")
        )
        existing = ledger.find(idempotency_key, req)
        if existing is not None:
            return SettlementBatch.objects.get(transaction=existing)
        if not claims:
            raise KechuangError("没有待支付的已批准兑付 / no approved claims to pay", "program")
        per_inst: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for c in claims:
            per_inst[c.institution_id] += c.amount
        legs = []
        for inst_id in sorted(per_inst):
            payable = _account(program, LedgerAccount.Kind.PAYABLE, institution_id=inst_id)
            paid = _account(program, LedgerAccount.Kind.PAID, institution_id=inst_id)
            legs += [
                ledger.debit(paid, per_inst[inst_id]),
                ledger.credit(payable, per_inst[inst_id]),
            ]
        total = sum(per_inst.values(), ZERO)
        tx = ledger.post(
            legs=legs,
            idempotency_key=idempotency_key,
            actor=actor,
            req_hash=req,
            memo=f"结算支付 / settlement of {len(claims)} claims",
        )
        batch = SettlementBatch.objects.create(
            program=program, total=total, created_by=actor, transaction=tx
        )
        Claim.objects.filter(pk__in=[c.pk for c in claims]).update(
            status=Claim.Status.PAID, batch=batch
        )
        ServiceOrder.objects.filter(claims__in=[c.pk for c in claims]).update(
            status=ServiceOrder.Status.PAID
        )
        audit_record(
            actor=actor,
            action="voucher.settlement_batch_create",
            obj_type="voucher_settlement_batch",
            obj_id=batch.pk,
            before=None,
            after={"claims": [c.pk for c in claims], "total": total, "transaction": tx.pk},
        )
    return batch


__all__ = [
    "amount_in",
    "claim_approve",
    "claim_reject",
    "claim_submit",
    "institution_apply",
    "institution_decide",
    "offering_create",
    "order_cancel",
    "order_create",
    "order_deliver",
    "order_voucher_apply",
    "program_budget_adjust",
    "program_create",
    "quota_approve",
    "quota_apply",
    "quota_expire",
    "quota_reject",
    "settlement_batch_create",
]
