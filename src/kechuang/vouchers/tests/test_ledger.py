"""ledger.post: the only writer of entries, and its refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from kechuang.vouchers import ledger, selectors, services
from kechuang.vouchers.models import LedgerEntry, LedgerTransaction


def test_program_budget_is_posted_from_the_appropriation(prog):
    b = selectors.program_balances(prog)
    assert b["budget"] == prog.budget == b["unallocated"] == Decimal("1000000.00")
    assert selectors.budget_identity_holds(prog)


def test_it_refuses_unbalanced_legs(prog, staff_zhang, ent_alice):
    quota = services.quota_account(prog, ent_alice.enterprise)
    unalloc = services.unallocated_account(prog)
    with pytest.raises(ledger.LedgerError, match="balance"):
        ledger.post(
            legs=[ledger.debit(quota, Decimal("10.00")), ledger.credit(unalloc, Decimal("9.99"))],
            idempotency_key="x1",
            actor=staff_zhang,
            memo="bad",
        )
    assert not LedgerTransaction.objects.filter(idempotency_key="x1").exists()


@pytest.mark.parametrize("amount", ["0.00", "-5.00", "1.005"])
def test_it_refuses_non_positive_and_sub_fen_amounts(prog, staff_zhang, ent_alice, amount):
    quota = services.quota_account(prog, ent_alice.enterprise)
    unalloc = services.unallocated_account(prog)
    with pytest.raises(ledger.LedgerError):
        ledger.post(
            legs=[ledger.debit(quota, Decimal(amount)), ledger.credit(unalloc, Decimal(amount))],
            idempotency_key="x2",
            actor=staff_zhang,
            memo="bad",
        )
    assert LedgerEntry.objects.filter(account=quota).count() == 0


def test_it_refuses_floats(prog, staff_zhang, ent_alice):
    quota = services.quota_account(prog, ent_alice.enterprise)
    unalloc = services.unallocated_account(prog)
    with pytest.raises(TypeError):
        ledger.post(
            legs=[ledger.debit(quota, 1.5), ledger.credit(unalloc, 1.5)],
            idempotency_key="x3",
            actor=staff_zhang,
            memo="bad",
        )


def test_it_refuses_to_overdraw_an_account(prog, staff_zhang, ent_alice):
    quota = services.quota_account(prog, ent_alice.enterprise)
    unalloc = services.unallocated_account(prog)
    too_much = prog.budget + Decimal("0.01")
    with pytest.raises(ledger.BalanceExceeded):
        ledger.post(
            legs=[ledger.debit(quota, too_much), ledger.credit(unalloc, too_much)],
            idempotency_key="x4",
            actor=staff_zhang,
            memo="overdraw",
        )
    assert selectors.account_balance(quota) == 0


def test_the_same_key_posts_once_and_a_different_payload_is_refused(prog, staff_zhang, ent_alice):
    quota = services.quota_account(prog, ent_alice.enterprise)
    unalloc = services.unallocated_account(prog)
    legs = [ledger.debit(quota, Decimal("10.00")), ledger.credit(unalloc, Decimal("10.00"))]
    first = ledger.post(legs=legs, idempotency_key="same", actor=staff_zhang, memo="m")
    again = ledger.post(legs=legs, idempotency_key="same", actor=staff_zhang, memo="m")
    assert again.pk == first.pk and again.replayed and not first.replayed
    assert selectors.account_balance(quota) == Decimal("10.00")
    other = [ledger.debit(quota, Decimal("20.00")), ledger.credit(unalloc, Decimal("20.00"))]
    with pytest.raises(ledger.IdempotencyConflict):
        ledger.post(legs=other, idempotency_key="same", actor=staff_zhang, memo="m")
    assert selectors.account_balance(quota) == Decimal("10.00")


def test_a_locked_posting_whose_key_another_request_took_is_a_conflict(
    prog, staff_zhang, ent_alice
):
    # The caller found the key free under its locks; another request took it before
    # the insert (here: already there). The unique key refuses it: nothing is written.
    quota = services.quota_account(prog, ent_alice.enterprise)
    unalloc = services.unallocated_account(prog)
    taken = ledger.post(
        legs=[ledger.debit(quota, Decimal("10.00")), ledger.credit(unalloc, Decimal("10.00"))],
        idempotency_key="taken",
        actor=staff_zhang,
        memo="the other request",
    )
    with pytest.raises(ledger.IdempotencyConflict), transaction.atomic():
        ledger.lock([quota, unalloc])
        ledger.post(
            legs=[ledger.debit(quota, Decimal("5.00")), ledger.credit(unalloc, Decimal("5.00"))],
            idempotency_key="taken",
            actor=staff_zhang,
            memo="this request",
            locked_balances=ledger.balances([quota, unalloc]),
        )
    assert LedgerTransaction.objects.filter(idempotency_key="taken").get() == taken
    assert selectors.account_balance(quota) == Decimal("10.00")


def test_every_posting_is_in_the_audit_log(prog, staff_zhang):
    from kechuang.accounts.models import AuditLog

    entry = AuditLog.objects.get(action="voucher.ledger_post")
    assert entry.actor == staff_zhang
    assert entry.after["legs"][0]["amount"] == "1000000.00"


def test_ledger_rows_cannot_be_edited_in_the_database(prog):
    from django.db import DatabaseError, transaction

    entry = LedgerEntry.objects.first()
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=Decimal("1.00"))
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerTransaction.objects.filter(pk=entry.transaction_id).update(memo="edited")
    entry.refresh_from_db()
    assert entry.amount == prog.budget
