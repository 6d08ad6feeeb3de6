"""Program settings: budget adjustments, the start-up team cap, statistics by period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from kechuang.errors import KechuangError
from kechuang.vouchers import ledger, selectors, services
from kechuang.vouchers.tests import factories as f
from kechuang.vouchers.tests.test_api import Api


def test_a_budget_increase_and_decrease_keep_the_identity(prog, staff_zhang, ent_alice):
    services.program_budget_adjust(
        program=prog, delta="250000.00", actor=staff_zhang, idempotency_key="b1", reason="追加预算"
    )
    services.program_budget_adjust(
        program=prog, delta="250000.00", actor=staff_zhang, idempotency_key="b1", reason="追加预算"
    )
    prog.refresh_from_db()
    assert prog.budget == Decimal("1250000.00")
    assert selectors.budget_identity_holds(prog)
    f.issue(prog, staff_zhang, ent_alice, "200000")
    with pytest.raises(ledger.BalanceExceeded):
        # Only money not yet issued can be taken back.
        services.program_budget_adjust(
            program=prog,
            delta="-1050000.01",
            actor=staff_zhang,
            idempotency_key="b2",
            reason="收回",
        )
    services.program_budget_adjust(
        program=prog, delta="-1050000.00", actor=staff_zhang, idempotency_key="b3", reason="收回"
    )
    prog.refresh_from_db()
    assert prog.budget == Decimal("200000.00")
    assert selectors.program_balances(prog)["unallocated"] == 0
    assert selectors.budget_identity_holds(prog)


def test_budget_adjustments_need_staff_and_a_reason(prog, staff_zhang, ent_alice):
    with pytest.raises(KechuangError, match="reason"):
        services.program_budget_adjust(
            program=prog, delta="1", actor=staff_zhang, idempotency_key="b", reason=""
        )
    r = Api(ent_alice).post(
        f"/programs/{prog.pk}/budget", {"delta": "1", "reason": "x", "idempotency_key": "b"}
    )
    assert r.status_code == 403
    r = Api(staff_zhang).post(
        f"/programs/{prog.pk}/budget", {"delta": "10.5", "reason": "x", "idempotency_key": "b"}
    )
    assert r.status_code == 200 and r.json()["budget"] == "1000010.50"


def test_a_start_up_team_is_capped_by_the_teams_cap(prog, staff_zhang, ent_alice):
    policy_team_cap = services.policy_annual_cap("startup_team", prog.scheme, prog.valid_from)
    assert services.quota_cap(prog, "startup_team") == min(prog.per_team_cap, policy_team_cap)
    app = services.quota_apply(
        program=prog,
        enterprise=ent_alice.enterprise,
        actor=ent_alice,
        amount=str(prog.per_team_cap + 1),
        applicant_type="startup_team",
    )
    with pytest.raises(KechuangError, match="cap"):
        services.quota_approve(
            application=app,
            actor=staff_zhang,
            amount=str(prog.per_team_cap + 1),
            idempotency_key="t1",
        )


def test_statistics_by_period(prog, staff_zhang, ent_alice):
    f.issue(prog, staff_zhang, ent_alice, "1000")
    today = timezone.localdate()
    assert selectors.program_statistics(prog, today, today)["amount_issued"] == Decimal("1000.00")
    later = today + dt.timedelta(days=1)
    assert selectors.program_statistics(prog, later, None)["amount_issued"] == 0
    assert selectors.program_statistics(prog, later, None)["redemption_rate"] is None


@pytest.mark.parametrize(
    "budget, delta, words",
    [
        ("1000.00", "-1000", "above zero"),
        ("900000000000", "900000000000", "too large"),
    ],
)
def test_a_budget_that_would_reach_zero_or_overflow_is_refused_and_nothing_moves(
    staff_zhang, budget, delta, words
):
    prog = f.program(staff_zhang, budget=budget)
    before = selectors.program_balances(prog)
    with pytest.raises(KechuangError, match=words):
        services.program_budget_adjust(
            program=prog, delta=delta, actor=staff_zhang, idempotency_key="b", reason="调整"
        )
    prog.refresh_from_db()
    assert str(prog.budget) == str(Decimal(budget).quantize(Decimal("0.01")))
    assert selectors.program_balances(prog) == before


@pytest.mark.parametrize("amount", ["1e26", "123456789012345678901234567.89"])
def test_an_amount_beyond_any_budget_is_refused_not_a_server_error(prog, ent_alice, amount):
    with pytest.raises(KechuangError, match="too large"):
        services.quota_apply(
            program=prog, enterprise=ent_alice.enterprise, actor=ent_alice, amount=amount
        )


def test_a_program_replayed_with_other_categories_is_refused(staff_zhang):
    kwargs = dict(
        year=f.TODAY.year, name="科技服务券", budget="1000", per_enterprise_cap="100",
        per_team_cap="100", valid_from=f.TODAY, valid_until=f.TODAY, actor=staff_zhang,
        idempotency_key="same",
    )
    first = services.program_create(categories=[f.category()], **kwargs)
    assert services.program_create(categories=[f.category()], **kwargs) == first
    with pytest.raises(ledger.IdempotencyConflict):
        services.program_create(categories=[f.category("mlps_assessment", "等保测评")], **kwargs)
