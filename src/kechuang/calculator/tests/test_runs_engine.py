"""A 免申即享 run pushed down into the app database agrees with explaining each
enterprise in process, and is reproducible."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from kechuang.calculator import runs, selectors_runs
from kechuang.calculator.models_runs import MianshenRun
from kechuang.calculator.selectors import application_inputs
from kechuang.calculator.services_runs import mianshen_run_start
from kechuang.registry.demo import demo_build
from kechuang.registry.selectors import enterprise_facts_rows
from kechuang.rules import evaluate_flat, get_policy, policy_ids

AS_OF = dt.date(2025, 6, 30)


def start(django_capture_on_commit_callbacks, **kwargs) -> MianshenRun:
    with django_capture_on_commit_callbacks(execute=True):
        run = mianshen_run_start(**kwargs)
    run.refresh_from_db()
    return run


@pytest.fixture
def demo_district(db):
    demo_build(count=40)


def registry_policies() -> list[str]:
    """Every policy a run can decide from the registry (not those needing an application)."""
    return [pid for pid in policy_ids() if not application_inputs(get_policy(pid))]


@pytest.mark.django_db
def test_a_policy_that_needs_an_application_is_refused_before_any_run(staff_zhang):
    from kechuang.errors import KechuangError

    for pid in ("voucher", "rd_super_deduction"):
        with pytest.raises(KechuangError) as refused:
            mianshen_run_start(policies=["hte", pid], as_of=AS_OF, actor=staff_zhang)
        assert refused.value.field == "policies" and pid in refused.value.message
    assert not MianshenRun.objects.exists()
    assert set(registry_policies()) >= {"hte", "tsme", "district_hte_first_reward"}


@pytest.mark.django_db
def test_run_verdicts_equal_explaining_each_enterprise(
    demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    ids = registry_policies()
    run = start(django_capture_on_commit_callbacks, policies=ids, as_of=AS_OF, actor=staff_zhang)
    assert run.status == MianshenRun.Status.DONE, run.error
    assert run.facts_count == 40
    stored = {(r.credit_code, r.policy_id): r for r in run.results.all()}
    assert len(stored) == 40 * len(ids)
    for row in enterprise_facts_rows(as_of=AS_OF):
        for pid in ids:
            expected = evaluate_flat(pid, row, AS_OF).to_dict()
            result = stored[(row["entity_id"], pid)]
            # What the SQL stored: verdict, missing facts, benefit.
            assert result.verdict == expected["verdict"], (row["entity_id"], pid)
            missing = [f for f in result.missing_fields.split(",") if f]
            assert missing == expected.get("missing_fields", []), (row["entity_id"], pid)
            benefit = run.benefit_outputs[pid]
            if benefit and expected.get(benefit[0]) is not None:
                assert result.benefit == Decimal(str(expected[benefit[0]])), (row["entity_id"], pid)
            elif benefit:
                assert result.benefit is None
            # The rest of the outputs: computed again from what the run recorded.
            assert result.outputs == {}
            expected.pop("trace")
            expected.pop("policy")
            assert selectors_runs.result_outputs(run, result) == expected


@pytest.mark.django_db
def test_rerunning_the_same_inputs_gives_the_same_results(
    demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    ids = registry_policies()
    first = start(django_capture_on_commit_callbacks, policies=ids, as_of=AS_OF, actor=staff_zhang)
    second = start(django_capture_on_commit_callbacks, policies=ids, as_of=AS_OF, actor=staff_zhang)
    assert first.facts_hash and first.facts_hash == second.facts_hash
    assert first.policy_hashes == second.policy_hashes
    assert first.parameters == second.parameters

    def shape(run):
        return sorted(
            (r.credit_code, r.policy_id, r.verdict, r.benefit, r.payable, r.missing_fields)
            for r in run.results.all()
        )

    assert shape(first) == shape(second)


@pytest.mark.django_db(transaction=True)
def test_a_run_outside_a_transaction_gives_the_same_results(staff_zhang, immediate_tasks):
    """As the worker runs it: committed rows, so PostgreSQL inserts policies in parallel."""
    demo_build(count=30)
    ids = registry_policies()
    run = mianshen_run_start(policies=ids, as_of=AS_OF, actor=staff_zhang)  # on_commit: now
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE, run.error
    assert sorted(run.policies_done) == sorted(ids)
    # Hashed (on PostgreSQL beside the inserts) and indexed for the result pages.
    assert run.facts_hash == runs.facts_hash(run.pk)
    with connection.cursor() as cur:
        constraints = connection.introspection.get_constraints(cur, runs.facts_table(run.pk))
    assert any(c["index"] and c["columns"] == ["entity_id"] for c in constraints.values())
    stored = {(r.credit_code, r.policy_id): r.verdict for r in run.results.all()}
    assert len(stored) == 30 * len(ids)
    for row in enterprise_facts_rows(as_of=AS_OF):
        for pid in ids:
            assert stored[(row["entity_id"], pid)] == evaluate_flat(pid, row, AS_OF).verdict


@pytest.mark.django_db
def test_a_run_before_a_policy_has_rules_is_refused_and_nothing_is_queued(staff_zhang):
    from kechuang.errors import KechuangError

    with pytest.raises(KechuangError) as caught:
        mianshen_run_start(policies=["hte"], as_of=dt.date(2015, 6, 30), actor=staff_zhang)
    assert caught.value.field == "as_of" and "2016-01-01" in str(caught.value)
    assert not MianshenRun.objects.exists()


@pytest.mark.django_db
def test_a_result_of_a_run_stored_before_such_dates_were_refused_is_refused_not_a_500(
    staff_zhang, immediate_tasks, django_capture_on_commit_callbacks, client, monkeypatch
):
    from kechuang.accounts.tokens import token_create
    from kechuang.rules.policy import Policy

    demo_build(count=5)
    # A run stored before run starts refused a day the rules do not cover.
    monkeypatch.setattr(Policy, "require_in_force", lambda self, day: None)
    run = start(
        django_capture_on_commit_callbacks,
        policies=["district_hte_first_reward"],
        as_of=dt.date(2019, 6, 30),
        actor=staff_zhang,
    )
    monkeypatch.undo()
    result = run.results.first()
    client.force_login(staff_zhang)
    page = client.get(f"/calculator/runs/{run.pk}/results/{result.pk}/")
    # Refused as a result that no longer follows from its inputs is (409), with the reason.
    assert page.status_code == 409
    assert "no rules in force on 2019-06-30" in page.content.decode()
    _, token = token_create(user=staff_zhang)
    api = client.get(
        f"/api/mianshen/runs/{run.pk}/results/{result.pk}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert api.status_code == 400, api.content
    assert "no rules in force" in api.json()["message"] and api.json()["extra"]["field"] == "as_of"
