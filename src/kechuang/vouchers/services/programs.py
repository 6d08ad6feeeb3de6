"""Programs: a year's voucher program, its budget and its validity period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction

from kechuang.accounts.services import audit_record
from kechuang.errors import KechuangError, checked_text
from kechuang.vouchers import access, ledger
from kechuang.vouchers.models import LedgerAccount, Program, ServiceCategory
from kechuang.vouchers.services._common import RATIO_PARAMETER, amount_in
from kechuang.vouchers.services.ledger_accounts import _account, unallocated_account


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
