"""What-if reforms: changed parameters run against the registry, compared side by side
with the law in force, which they never change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from kechuang.calculator import reforms, runs
from kechuang.calculator.models_runs import MianshenRun, Reform
from kechuang.calculator.services_runs import mianshen_run_confirm
from kechuang.errors import KechuangError
from kechuang.registry.demo import demo_build
from kechuang.registry.selectors import enterprise_facts_rows
from kechuang.rules import get_policy
from kechuang.rules.explain.evaluate import evaluate_row

AS_OF = dt.date(2025, 6, 30)
HTE = "district_hte_first_reward"


@pytest.fixture
def demo_district(db):
    demo_build(count=60)


def current(policy_id: str, name: str) -> Decimal:
    return Decimal(runs.decimal_text(get_policy(policy_id).parameters[name].at(AS_OF).value))


def create_and_run(client, capture, policy_id: str, changes: dict[str, str]) -> Reform:
    data = {"policy": policy_id, "as_of": AS_OF.isoformat(), "name": "试算"}
    data.update({f"param_{k}": v for k, v in changes.items()})
    with capture(execute=True):
        response = client.post(f"/calculator/reforms/?policy={policy_id}", data)
    assert response.status_code == 302, response.content.decode()[-1500:]
    return Reform.objects.latest("id")


@pytest.mark.django_db
def test_a_higher_reward_costs_the_difference_for_every_eligible_enterprise(
    client, demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    old = current(HTE, "reward_amount")
    new = old * 2
    client.force_login(staff_zhang)
    reform = create_and_run(client, django_capture_on_commit_callbacks, HTE, {"reward_amount": str(new)})
    assert reform.overrides == {"reward_amount": runs.decimal_text(new)}
    run = reform.runs.get()
    comparison = reforms.reform_comparison(run)
    eligible_before, eligible_after = comparison["counts"]["eligible"]
    assert eligible_before == eligible_after > 0
    assert comparison["budget_delta"] == eligible_after * (new - old)
    assert len(comparison["gainers"]) == eligible_after and not comparison["losers"]

    page = client.get(f"/calculator/reforms/{reform.pk}/").content.decode()
    assert "reform-counts" in page and "budget-delta" in page
    chart = client.get(f"/calculator/reforms/{reform.pk}/chart.png")
    assert chart.status_code == 200 and chart["Content-Type"] == "image/png"
    assert chart.content[:8] == b"\x89PNG\r\n\x1a\n"

    # A result's outputs, computed again from what the reform run recorded, carry its
    # reward, not the law's.
    from kechuang.calculator import selectors_runs

    for r in run.results.filter(verdict="eligible")[:5]:
        assert Decimal(str(selectors_runs.result_outputs(run, r)["reward_amount"])) == new

    # The law in force is unchanged: the policy, and a normal run after the reform.
    assert current(HTE, "reward_amount") == old
    assert all(r.benefit == old for r in run.baseline.results.filter(verdict="eligible"))


@pytest.mark.django_db
def test_a_higher_pass_mark_makes_losers_and_agrees_with_explaining(
    client, demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    mark = current("tsme", "pass_mark")
    client.force_login(staff_zhang)
    reform = create_and_run(
        client, django_capture_on_commit_callbacks, "tsme", {"pass_mark": str(mark + 20)}
    )
    run = reform.runs.get()
    comparison = reforms.reform_comparison(run)
    before, after = comparison["counts"]["eligible"]
    assert after < before
    assert len(comparison["losers"]) == before - after and not comparison["gainers"]
    # The reform run agrees with explaining each enterprise under the same override.
    policy = runs.policy_with_overrides(get_policy("tsme"), reform.overrides, AS_OF)
    verdicts = {r.credit_code: r.verdict for r in run.results.all()}
    for row in enterprise_facts_rows(as_of=AS_OF):
        assert evaluate_row(policy, row, AS_OF).verdict == verdicts[row["entity_id"]]


@pytest.mark.django_db
def test_a_reform_run_is_never_paid(
    client, demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    client.force_login(staff_zhang)
    reform = create_and_run(
        client, django_capture_on_commit_callbacks, HTE,
        {"reward_amount": str(current(HTE, "reward_amount") + 1)},
    )
    run = reform.runs.get()
    with pytest.raises(KechuangError):
        mianshen_run_confirm(run=run, actor=staff_zhang)
    # Nor the law-in-force side it is compared with, through the page either.
    assert run.baseline.is_baseline
    with pytest.raises(KechuangError):
        mianshen_run_confirm(run=run.baseline, actor=staff_zhang)
    client.post(f"/calculator/runs/{run.baseline.pk}/confirm/")
    run.baseline.refresh_from_db()
    assert run.baseline.status == MianshenRun.Status.DONE and not run.baseline.offers.exists()
    result = run.results.filter(verdict="eligible").first()
    with pytest.raises(KechuangError, match="what-if"):
        from kechuang.calculator.services_runs import mianshen_result_exclude

        mianshen_result_exclude(result=result, reason="x", actor=staff_zhang)


@pytest.mark.django_db
def test_a_reform_refuses_bad_values_and_changes_nothing(client, staff_zhang):
    client.force_login(staff_zhang)
    for value in ("abc", "", "1e999999999", "NaN"):
        response = client.post(
            f"/calculator/reforms/?policy={HTE}",
            {"policy": HTE, "as_of": AS_OF.isoformat(), "name": "x", "param_reward_amount": value},
        )
        assert response.status_code == 200
    assert not Reform.objects.exists() and not MianshenRun.objects.exists()
    with pytest.raises(KechuangError):
        runs.policy_with_overrides(get_policy(HTE), {"no_such_parameter": "1"}, AS_OF)
    for name, field in (("长" * 201, "name"), ("a\x00b", "name")):
        with pytest.raises(KechuangError) as refused:
            reforms.reform_create(
                policy_id=HTE, name=name, overrides={}, actor=staff_zhang, as_of=AS_OF
            )
        assert refused.value.field == field
    assert not Reform.objects.exists()
