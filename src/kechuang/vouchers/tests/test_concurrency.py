"""Many clients at once. On PostgreSQL the clients are real threads with their
own connections, released together by a barrier; SQLite (one writer at a time)
runs the same requests one after the other. Either way the assertions are the
same and exact: never more than the quota, never more than the budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kechuang.accounts.models import Role
from kechuang.errors import KechuangError
from kechuang.registry.models import Enterprise
from kechuang.testing import credit_code, make_user, run_clients
from kechuang.vouchers import ledger, selectors, services
from kechuang.vouchers.models import LedgerEntry, QuotaApplication, ServiceOrder
from kechuang.vouchers.tests import factories as f

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_fifty_clients_never_spend_more_than_the_quota(staff_zhang, ent_alice, inst_lab):
    prog = f.program(staff_zhang)
    lab = f.institution(staff_zhang, inst_lab)
    offer = f.offering(lab, inst_lab)
    f.issue(prog, staff_zhang, ent_alice, "5000.00")
    orders = [f.order(prog, ent_alice, offer, "1000.00") for _ in range(50)]

    def spend(order):
        return lambda: services.order_voucher_apply(
            order=order, actor=ent_alice, idempotency_key=f"spend-{order.pk}"
        )

    results = run_clients([spend(o) for o in orders])
    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, KechuangError)
    ]
    assert not unexpected, unexpected
    committed = sum(
        (o.subsidy_amount for o in ServiceOrder.objects.filter(status="voucher_applied")),
        Decimal(0),
    )
    # Every client either got a commitment or a clear refusal, and together
    # they spent exactly the quota, not a fen more.
    assert committed == Decimal("5000.00")
    assert selectors.quota_balance(prog, ent_alice.enterprise) == 0
    assert selectors.program_balances(prog)["committed"] == committed
    assert not selectors.negative_accounts(prog)
    assert selectors.budget_identity_holds(prog)


def test_concurrent_approvals_never_over_issue_the_budget(staff_zhang):
    prog = f.program(staff_zhang, budget="10000.00")
    apps = []
    for i in range(30):
        ent = Enterprise.objects.create(
            credit_code=credit_code(f"91310107MA1H{i:05d}"), name=f"企业{i}"
        )
        user = make_user(f"ent_{i}", Role.ENTERPRISE, ent)
        apps.append(
            services.quota_apply(
                program=prog,
                enterprise=ent,
                actor=user,
                amount="500.00",
                applicant_facts=f.ELIGIBLE,
            )
        )

    def approve(app):
        return lambda: services.quota_approve(
            application=app, actor=staff_zhang, amount="500.00", idempotency_key=f"approve-{app.pk}"
        )

    results = run_clients([approve(a) for a in apps])
    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, KechuangError)
    ]
    assert not unexpected, unexpected
    assert QuotaApplication.objects.filter(status="approved").count() == 20
    b = selectors.program_balances(prog)
    assert b["unallocated"] == 0 and b["quota"] == Decimal("10000.00")
    assert selectors.budget_identity_holds(prog)


def test_concurrent_replays_of_one_request_move_money_once(staff_zhang, ent_alice, inst_lab):
    prog = f.program(staff_zhang)
    lab = f.institution(staff_zhang, inst_lab)
    offer = f.offering(lab, inst_lab)
    f.issue(prog, staff_zhang, ent_alice, "5000.00")
    order = f.order(prog, ent_alice, offer, "1000.00")
    call = lambda: services.order_voucher_apply(order=order, actor=ent_alice, idempotency_key="one")  # noqa: E731
    results = run_clients([call] * 10)
    assert all(isinstance(r, ServiceOrder) for r in results), results
    assert LedgerEntry.objects.filter(account__kind="committed").count() == 1


def test_a_redemption_killed_midway_leaves_the_ledger_balanced_and_retries_once(
    staff_zhang, ent_alice, inst_lab, monkeypatch
):
    prog = f.program(staff_zhang)
    lab = f.institution(staff_zhang, inst_lab)
    offer = f.offering(lab, inst_lab)
    f.issue(prog, staff_zhang, ent_alice, "5000.00")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "1000.00"), actor=ent_alice, idempotency_key="o"
    )
    services.order_deliver(order=order, actor=inst_lab, upload=f.pdf())
    claim = services.claim_submit(order=order, actor=inst_lab)
    before = selectors.program_balances(prog)

    real_insert = ledger._insert

    def die_after_first_leg(tx, legs):
        real_insert(tx, legs[:1])
        raise ConnectionError("process killed after writing the first leg")

    monkeypatch.setattr(ledger, "_insert", die_after_first_leg)
    with pytest.raises(ConnectionError):
        services.claim_approve(claim=claim, actor=staff_zhang, idempotency_key="redeem-1")
    monkeypatch.undo()

    # Nothing of the half-written transaction survived.
    assert selectors.program_balances(prog) == before
    assert not selectors.unbalanced_transactions(prog)
    claim.refresh_from_db()
    assert claim.status == "submitted"

    # The client retries with the same key: it completes, and only once.
    services.claim_approve(claim=claim, actor=staff_zhang, idempotency_key="redeem-1")
    services.claim_approve(claim=claim, actor=staff_zhang, idempotency_key="redeem-1")
    b = selectors.program_balances(prog)
    assert b["payable"] == order.subsidy_amount and b["committed"] == 0
    assert LedgerEntry.objects.filter(account__kind="payable").count() == 1
    assert selectors.budget_identity_holds(prog)
