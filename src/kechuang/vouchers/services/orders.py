"""Service orders: recording, applying vouchers (the raw-SQL fast path), cancelling, delivering."""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from kechuang.accounts.services import audit_entries, audit_record
from kechuang.calculator import law
from kechuang.errors import KechuangError, checked_text
from kechuang.money import FEN, parse_yuan
from kechuang.registry.models import Enterprise
from kechuang.rules import MalformedFacts, Policy, flatten
from kechuang.vouchers import access, ledger, prepared
from kechuang.vouchers.models import (
    Institution,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Offering,
    Program,
    QuotaApplication,
    ServiceOrder,
)
from kechuang.vouchers.services._common import POLICY, RATIO_PARAMETER, ZERO, _today, amount_in
from kechuang.vouchers.services.ledger_accounts import quota_account, unallocated_account
from kechuang.vouchers.services.programs import _program_open
from kechuang.vouchers.uploads import check_delivery_file


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
