"""The self-check reads one facts row from the registry and explains every policy in force."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kechuang.calculator import selectors
from kechuang.calculator.tests.selfcheck_data import AS_OF, put_alice_on_the_register
from kechuang.registry.selectors import enterprise_nested_facts
from kechuang.rules import evaluate, get_policy, policy_ids


@pytest.fixture
def alice(alice_corp):
    return put_alice_on_the_register(alice_corp)


def test_the_selfcheck_equals_evaluate_on_the_enterprises_nested_facts(alice, bob_corp):
    for enterprise in (alice, bob_corp):
        result = selectors.enterprise_selfcheck(enterprise=enterprise, as_of=AS_OF)
        nested = enterprise_nested_facts(enterprise, AS_OF)
        for check in result.checks:
            expected = evaluate(check.policy_id, nested, AS_OF).to_dict()
            assert check.decision.to_dict() == expected, (enterprise.credit_code, check.policy_id)


def test_it_covers_every_policy_in_force_on_the_date(alice):
    result = selectors.enterprise_selfcheck(enterprise=alice, as_of=AS_OF)
    in_force = [
        pid
        for pid in policy_ids()
        if get_policy(pid).effective_from <= AS_OF
        and (get_policy(pid).effective_to is None or get_policy(pid).effective_to >= AS_OF)
    ]
    assert [c.policy_id for c in result.checks] == in_force
    assert {"district_hte_first_reward", "district_sh_sci_award_match"} <= set(in_force)


def test_a_policy_not_yet_in_force_is_not_shown(alice):
    before = get_policy("district_hte_first_reward").effective_from - dt.timedelta(days=1)
    result = selectors.enterprise_selfcheck(enterprise=alice, as_of=before)
    assert "district_hte_first_reward" not in [c.policy_id for c in result.checks]


def test_the_district_rewards_are_explained_with_values_thresholds_and_articles(alice):
    result = selectors.enterprise_selfcheck(enterprise=alice, as_of=AS_OF)
    checks = {c.policy_id: c for c in result.checks}
    for pid in (
        "district_hte_first_reward",
        "district_little_giant_match",
        "district_sh_sci_award_match",
    ):
        check = checks[pid]
        assert check.verdict == "eligible", pid
        assert check.verdict_label == "符合"
        assert check.benefit == Decimal(str(check.decision.to_dict()["benefit_amount"]))
        assert check.benefit > 0
        assert all(c.outcome is True for c in check.criteria)
        assert all(c.article for c in check.criteria)
    recent = next(
        c
        for c in checks["district_hte_first_reward"].criteria
        if c.id == "first_recognition_recent"
    )
    values = {name: value for name, _label, value in recent.values}
    assert values["hte_first_certificate_issue_date"] == "2024-11-15"
    (parameter,) = recent.parameters
    assert parameter["article"].startswith("demo value")
    assert parameter["since"] is not None
    assert result.expected_benefit == sum(
        (c.benefit for c in result.checks if c.verdict == "eligible" and c.benefit), Decimal(0)
    )


def test_a_failing_criterion_says_what_would_have_to_change(bob_corp):
    result = selectors.enterprise_selfcheck(enterprise=bob_corp, as_of=AS_OF)
    award = next(c for c in result.checks if c.policy_id == "district_sh_sci_award_match")
    assert award.verdict in ("ineligible", "needs_data")
    won = next(c for c in award.criteria if c.id == "award_won")
    assert won.outcome is False
    # The flip as a target next to the value read: "…次数：须不低于 1（目前 0）".
    policy = award.decision.evaluation.policy
    label = policy.inputs["sh_sci_award_count"].description.zh
    (flip,) = won.changes
    assert flip.startswith(label) and "（目前 0）" in flip


def test_a_date_threshold_reads_as_a_date(alice):
    # Alice's first 高企 certificate was issued in 2024; as of 2026 it is out of the window.
    result = selectors.enterprise_selfcheck(enterprise=alice, as_of=dt.date(2026, 6, 30))
    reward = next(c for c in result.checks if c.policy_id == "district_hte_first_reward")
    recent = next(c for c in reward.criteria if c.id == "first_recognition_recent")
    assert recent.outcome is False
    window_start = {name: value for name, _label, value in recent.values}["window_start_date"]
    (flip,) = recent.changes
    assert f"须不早于 {window_start}" in flip and "（目前 2024-11-15）" in flip


def test_missing_data_is_named_with_the_place_to_enter_it(alice, ent_alice):
    # Alice has figures for 2024 only: the 高企 window wants 2022 and 2023 too.
    result = selectors.enterprise_selfcheck(enterprise=alice, as_of=AS_OF, user=ent_alice)
    hte = next(c for c in result.checks if c.policy_id == "hte")
    by_path = {m.path: m for m in hte.missing}
    assert by_path["financials.2023.sales_revenue"].where == "fiscal_year"
    assert (
        by_path["financials.2023.sales_revenue"].url == f"/registry/{alice.credit_code}/years/new/"
    )
    assert by_path["financials.2024.total_income"].url == (
        f"/registry/{alice.credit_code}/years/2024/edit/"
    )
    # Alice may not change the commission's findings: she is shown where they stand.
    flag = by_path["tech_field_supported"]
    assert flag.where == "enterprise"
    assert flag.url == f"/registry/{alice.credit_code}/"


def test_staff_get_the_edit_page_for_the_commissions_findings(alice, staff_zhang):
    result = selectors.enterprise_selfcheck(enterprise=alice, as_of=AS_OF, user=staff_zhang)
    hte = next(c for c in result.checks if c.policy_id == "hte")
    flag = next(m for m in hte.missing if m.path == "tech_field_supported")
    assert flag.url == f"/registry/{alice.credit_code}/edit/"


def test_an_enterprise_never_checked_gets_needs_data_naming_the_facts_not_ineligible(bob_corp):
    # Bob's compliance was never checked: the credit list is unknown, not "clean".
    bob_corp.awards.create(
        kind="shanghai_sci_award", grade="二等奖", unit_rank=1, awarded_on=dt.date(2025, 1, 10)
    )
    result = selectors.enterprise_selfcheck(enterprise=bob_corp, as_of=AS_OF)
    award = next(c for c in result.checks if c.policy_id == "district_sh_sci_award_match")
    assert award.verdict == "needs_data"
    assert [m.path for m in award.missing] == ["in_serious_dishonesty_list"]
    assert award.benefit is None


def test_transaction_packs_are_shown_as_per_application(alice):
    result = selectors.enterprise_selfcheck(enterprise=alice, as_of=AS_OF)
    checks = {c.policy_id: c for c in result.checks}
    for pid in ("voucher", "rd_super_deduction"):
        assert checks[pid].verdict == "needs_data"
        assert checks[pid].per_application
        assert any(m.where == "application" for m in checks[pid].missing)
    assert not checks["district_hte_first_reward"].per_application


def test_the_facts_come_from_one_sql_query(alice):
    with CaptureQueriesContext(connection) as queries:
        selectors.enterprise_selfcheck(enterprise=alice, as_of=AS_OF)
    # The facts row, and the published parameter values' version (law.policies_in_force).
    assert len(queries) == 2
    assert sum("calculator_parameterpublication" in q["sql"] for q in queries) == 1


def test_decisions_as_dicts_are_the_decisions_to_dict(alice):
    dicts = selectors.decisions_as_dicts(enterprise=alice, as_of=AS_OF)
    result = selectors.enterprise_selfcheck(enterprise=alice, as_of=AS_OF)
    assert dicts == [c.decision.to_dict() for c in result.checks]


def test_two_eligible_rewards_that_may_not_be_combined_say_so(alice):
    # Alice qualifies for both the first-time 高企 reward and the 小巨人 match; the
    # 小巨人 file declares that they are not paid together (stacking:).
    result = selectors.enterprise_selfcheck(enterprise=alice, as_of=AS_OF)
    checks = {c.policy_id: c for c in result.checks}
    hte_reward = checks["district_hte_first_reward"]
    giant = checks["district_little_giant_match"]
    assert hte_reward.verdict == giant.verdict == "eligible"
    assert giant.stacking and giant.stacking == hte_reward.stacking
    assert "不重复享受" in giant.stacking[0]
    assert checks["district_sh_sci_award_match"].stacking == []


def test_a_short_rd_ratio_reads_as_rd_expense_over_the_window_in_yuan():
    # The hte R&D condition is guarded against zero sales (a CASE); its smallest change is
    # a derived value with a description, shown in money like an input.
    from kechuang.rules.tests.test_explain import HTE

    decision = evaluate("hte", HTE, dt.date(2025, 6, 30))
    check = selectors.policy_check(decision)
    rd = next(c for c in check.criteria if c.id == "rd_ratio_meets_tier")
    assert rd.changes == ["近三个会计年度研究开发费用总额（元）：须不低于 6,000,000（目前 4,400,000）"]
    excluded_rd = evaluate(
        "rd_super_deduction",
        {"tax_year": 2021, "resident_enterprise": True, "accounting_sound": True,
         "audit_based_cit_collection": True, "industry": "software", "rd_expense_expensed": 1},
        dt.date(2022, 5, 31),
    )
    view = next(
        c for c in selectors.policy_check(excluded_rd).criteria if c.id == "negative_list_excluded"
    )
    assert (view.role, view.outcome, view.passed, view.changes) == ("exclusion", False, True, [])
