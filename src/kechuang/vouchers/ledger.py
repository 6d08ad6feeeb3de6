"""The voucher ledger's one writer: :func:`post`.

Nothing else creates ``LedgerEntry`` rows. ``post`` refuses to write unless the
legs balance (debits = credits), every amount is a positive number of fen, all
accounts belong to one program, and no account's balance would go negative.
It locks the accounts it touches, in id order, so two postings over the same
accounts queue instead of both reading the same balance.

Balances are sums of entries (:func:`balances`), never stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from kechuang.accounts.services import audit_entries
from kechuang.errors import KechuangError
from kechuang.money import FEN
from kechuang.vouchers import prepared
from kechuang.vouchers.models import LedgerAccount, LedgerEntry, LedgerTransaction

ZERO = Decimal("0.00")
#: Accounts whose normal balance is a credit (their debit balance is minus what they hold).
CREDIT_NORMAL = frozenset({LedgerAccount.Kind.APPROPRIATION})


class LedgerError(KechuangError):
    """A posting was refused; nothing was written."""


class BalanceExceeded(LedgerError):
    pass


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"幂等键已用于另一请求 / idempotency key {key!r} was already used for a different request",
            "idempotency_key",
        )


@dataclass(frozen=True)
class Leg:
    account: LedgerAccount
    side: str  # "debit" or "credit"
    amount: Decimal


def debit(account: LedgerAccount, amount: Decimal) -> Leg:
    return Leg(account, LedgerEntry.Side.DEBIT, amount)


def credit(account: LedgerAccount, amount: Decimal) -> Leg:
    return Leg(account, LedgerEntry.Side.CREDIT, amount)


def request_hash(payload: dict[str, Any]) -> str:
    """SHA-256 of a request's canonical JSON (Decimals and dates as text).

    >>> request_hash({"b": Decimal("1.50"), "a": 1}) == request_hash({"a": 1, "b": Decimal("1.50")})
    True
    """
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


#: Keys the platform itself posts under (the year-end expiry). Keys are global, and a
#: client that could take one of these first would make the platform's posting fail.
SYSTEM_PREFIX = "kechuang:"


def check_key(idempotency_key: str, *, system: bool = False) -> str:
    key = (idempotency_key or "").strip()
    if not key or len(key) > 200:
        raise LedgerError(
            "需要幂等键（1–200 个字符）/ an idempotency key of 1-200 characters is required",
            "idempotency_key",
        )
    if key.startswith(SYSTEM_PREFIX) and not system:
        raise LedgerError(
            f"幂等键不能以 {SYSTEM_PREFIX} 开头 / idempotency keys starting with "
            f"{SYSTEM_PREFIX!r} are reserved for the platform",
            "idempotency_key",
        )
    return key


def find(
    idempotency_key: str, req_hash: str, *, system: bool = False
) -> LedgerTransaction | None:
    """The transaction already posted under this key, or None.

    Services call this *before* checking balances: a replay returns the original
    result even if the balances have moved since. A replay whose request differs
    is refused."""
    key = check_key(idempotency_key, system=system)
    tx = LedgerTransaction.objects.filter(idempotency_key=key).first()
    if tx is not None and tx.request_hash != req_hash:
        raise IdempotencyConflict(idempotency_key)
    return tx


def lock(accounts: Iterable[LedgerAccount]) -> None:
    """Lock these accounts' rows until the transaction ends, always in id order
    (two postings locking A then B and B then A would deadlock)."""
    ids = sorted({a.pk for a in accounts})
    list(LedgerAccount.objects.select_for_update().filter(pk__in=ids).order_by("pk").values("pk"))


def balances(accounts: Iterable[LedgerAccount]) -> dict[int, Decimal]:
    """Debit-minus-credit balance of each account (by id), summed from its entries."""
    ids = [a.pk for a in accounts]
    result = dict.fromkeys(ids, ZERO)
    rows = (
        LedgerEntry.objects.filter(account_id__in=ids)
        .order_by()
        .values("account_id", "side")
        .annotate(total=Sum("amount"))
    )
    for row in rows:
        sign = 1 if row["side"] == LedgerEntry.Side.DEBIT else -1
        result[row["account_id"]] += sign * row["total"]
    # SQLite's SUM drops trailing zeros; amounts are always read to the fen.
    return {pk: value.quantize(FEN) for pk, value in result.items()}


def held(account: LedgerAccount, debit_balance: Decimal) -> Decimal:
    """What the account holds, in its normal direction (never negative when consistent)."""
    return -debit_balance if account.kind in CREDIT_NORMAL else debit_balance


def _validate(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise LedgerError("一笔记账至少两条分录 / a transaction needs at least two legs")
    program_ids = {leg.account.program_id for leg in legs}
    if len(program_ids) != 1:
        raise LedgerError("分录须属于同一项目 / all legs must belong to one program")
    for leg in legs:
        if not isinstance(leg.amount, Decimal):
            raise TypeError("amount must be a Decimal")
        if leg.side not in (LedgerEntry.Side.DEBIT, LedgerEntry.Side.CREDIT):
            raise LedgerError(f"unknown side {leg.side!r}")
        if leg.amount <= 0:
            raise LedgerError("金额须大于零 / amounts must be positive", "amount")
        if leg.amount != leg.amount.quantize(FEN):
            raise LedgerError("金额最多两位小数 / at most two decimals (fen)", "amount")
        if leg.account.pk is None:
            raise LedgerError("account not saved")
    debits = sum((leg.amount for leg in legs if leg.side == LedgerEntry.Side.DEBIT), ZERO)
    credits = sum((leg.amount for leg in legs if leg.side == LedgerEntry.Side.CREDIT), ZERO)
    if debits != credits:
        raise LedgerError(f"借贷不平 / legs do not balance: debits {debits} ≠ credits {credits}")


def post(
    *,
    legs: Sequence[Leg],
    idempotency_key: str,
    actor: Any,
    memo: str,
    req_hash: str | None = None,
    locked_balances: dict[int, Decimal] | None = None,
    system: bool = False,
) -> LedgerTransaction:
    """Write one balanced transaction, or return the one already posted under
    ``idempotency_key`` (``tx.replayed`` tells which).

    Refuses (``LedgerError``, nothing written) unbalanced legs, non-positive or
    sub-fen amounts, legs of two programs, a reused key with another request,
    and any posting that would leave an account below zero.

    ``locked_balances`` is for a service that already runs inside
    ``transaction.atomic()`` and has, in that transaction, locked (with
    :func:`lock`, in id order) every account of the legs — or created it there,
    so no other transaction can see it — then looked the key up with
    :func:`find` and read the balances with :func:`balances`: the debit balance
    of each account by id. ``post`` then trusts those reads instead of repeating
    them (the rows cannot change while they are held); the balance check, the
    unique key and the audit record are the same. The key was free under the
    caller's locks, so a request that takes it before this one commits is another
    request: the unique key refuses this one with ``IdempotencyConflict``, which
    aborts the caller's transaction (no savepoint to replay from)."""
    _validate(legs)
    key = check_key(idempotency_key, system=system)
    if req_hash is None:
        req_hash = request_hash(
            {"memo": memo, "legs": [(leg.account.pk, leg.side, leg.amount) for leg in legs]}
        )
    accounts = {leg.account.pk: leg.account for leg in legs}
    if locked_balances is not None:
        if not transaction.get_connection().in_atomic_block:
            raise LedgerError("locked_balances needs the caller's transaction")
        if set(accounts) - set(locked_balances):
            raise LedgerError("locked_balances must cover every account of the legs")
        # Nothing is read or written before the checks: no savepoint needed;
        # an error while writing aborts the caller's transaction as a whole.
        _check_after(legs, accounts, {pk: locked_balances[pk] for pk in accounts})
        with transaction.atomic(savepoint=False):
            return _write(legs, key, req_hash, actor, memo, key_checked=True)
    with transaction.atomic():
        existing = find(key, req_hash, system=system)
        if existing is not None:
            existing.replayed = True
            return existing
        # Two postings that read a balance before either writes would both pass
        # the check below and together overdraw the account: hold the rows.
        lock(accounts.values())
        _check_after(legs, accounts, balances(accounts.values()))
        return _write(legs, key, req_hash, actor, memo)


def _check_after(
    legs: Sequence[Leg], accounts: dict[int, LedgerAccount], before: dict[int, Decimal]
) -> None:
    """Refuse the posting if any account would hold less than zero after it."""
    after = dict(before)
    for leg in legs:
        after[leg.account.pk] += leg.amount if leg.side == LedgerEntry.Side.DEBIT else -leg.amount
    for pk, debit_balance in after.items():
        account = accounts[pk]
        if held(account, debit_balance) < 0:
            raise BalanceExceeded(
                f"余额不足 / the {account.kind} account would go negative "
                f"({held(account, debit_balance)})",
                "amount",
            )


def _write(
    legs: Sequence[Leg],
    key: str,
    req_hash: str,
    actor: Any,
    memo: str,
    *,
    key_checked: bool = False,
) -> LedgerTransaction:
    """The transaction row (unique key), its entries and the audit record; the
    caller holds the account locks and has checked the balances.

    ``key_checked``: the caller found the key free while holding the locks that
    serialize every request for the same thing, so the key cannot be lost to the
    same request, only to another one (see :func:`post`)."""
    tx = LedgerTransaction(
        program_id=legs[0].account.program_id,
        idempotency_key=key,
        request_hash=req_hash,
        memo=memo[:200],
        actor_id=actor.pk if actor is not None and actor.pk else None,
        at=timezone.now(),
    )
    if key_checked:
        # No savepoint: two statements fewer on the busiest write (issue 6).
        try:
            _insert(tx, legs)
        except IntegrityError as exc:
            if "idempotency_key" not in str(exc):
                raise  # a ledger error of another kind is not the client's key conflict
            raise IdempotencyConflict(key) from exc
        return _audit(tx, legs, key, actor)
    try:
        # A savepoint, so that losing a race on the key leaves the caller's
        # transaction usable (PostgreSQL aborts a transaction on any error).
        with transaction.atomic():
            _insert(tx, legs)
    except IntegrityError:
        # The same request, posted concurrently, committed first. (The key was checked
        # by the caller, with its own right to a system key.)
        existing = find(key, req_hash, system=True)
        if existing is None:
            raise
        existing.replayed = True
        return existing
    return _audit(tx, legs, key, actor)


# Issue 6: the rows are written with plain INSERTs. Django's ORM costs the client
# several times the CPU of the statement itself (compiling the query, building
# instances), and ``post`` runs inside the platform's busiest write.


@cache
def _transaction_insert_sql() -> str:
    qn = connection.ops.quote_name
    columns = ("program_id", "idempotency_key", "request_hash", "memo", "actor_id", "at")
    return (
        f"INSERT INTO {qn(LedgerTransaction._meta.db_table)} ({', '.join(map(qn, columns))}) "
        f"VALUES ({', '.join(f'%({c})s' for c in columns)}) RETURNING {qn('id')}"
    )


@cache
def _entries_insert_sql(legs: int) -> str:
    qn = connection.ops.quote_name
    columns = ("transaction_id", "account_id", "side", "amount")
    # The transaction's id by its key: the entries go in the same round trip as
    # the transaction row, before its id has come back.
    tx_id = (
        f"(SELECT {qn('id')} FROM {qn(LedgerTransaction._meta.db_table)}"
        " WHERE idempotency_key = %(idempotency_key)s)"
    )
    rows = ", ".join(f"({tx_id}, %(account{i})s, %(side{i})s, %(amount{i})s)" for i in range(legs))
    return (
        f"INSERT INTO {qn(LedgerEntry._meta.db_table)} ({', '.join(map(qn, columns))}) "
        f"VALUES {rows}"
    )


def _insert(tx: LedgerTransaction, legs: Sequence[Leg]) -> None:
    """Insert ``tx`` (not yet saved) and all its legs, and mark it saved with
    its new id: two statements, one round trip on PostgreSQL."""
    at = LedgerTransaction._meta.get_field("at").get_db_prep_value(tx.at, connection)
    amount = LedgerEntry._meta.get_field("amount")
    entries: dict[str, Any] = {"idempotency_key": tx.idempotency_key}
    for i, leg in enumerate(legs):
        entries[f"account{i}"] = leg.account.pk
        entries[f"side{i}"] = leg.side
        entries[f"amount{i}"] = amount.get_db_prep_save(leg.amount, connection)
    row = {
        "program_id": tx.program_id,
        "idempotency_key": tx.idempotency_key,
        "request_hash": tx.request_hash,
        "memo": tx.memo,
        "actor_id": tx.actor_id,
        "at": at,
    }
    with connection.cursor() as cur:
        inserted, _ = prepared.execute_all(
            cur, [(_transaction_insert_sql(), row), (_entries_insert_sql(len(legs)), entries)]
        )
    tx.pk = inserted[0][0]
    tx._state.adding = False
    tx._state.db = connection.alias


def _audit(tx: LedgerTransaction, legs: Sequence[Leg], key: str, actor: Any) -> LedgerTransaction:
    """The audit record of a transaction just written."""
    audit_entries(
        actor=actor,
        action="voucher.ledger_post",
        obj_type="ledger_transaction",
        changes=[
            (
                tx.pk,
                None,
                {
                    "memo": tx.memo,
                    "idempotency_key": key,
                    "legs": [
                        {"account": str(leg.account), "side": leg.side, "amount": leg.amount}
                        for leg in legs
                    ],
                },
            )
        ],
    )
    tx.replayed = False
    return tx
