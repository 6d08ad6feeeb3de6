"""Stacking (不得重复享受), needs_data, interrupted runs, and the CLI."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from kechuang.accounts.models import Role
from kechuang.calculator.models_runs import MianshenResult, MianshenRun, Notification
from kechuang.calculator.services_runs import (
    STALE_AFTER,
    mianshen_result_exclude,
    mianshen_run_confirm,
    mianshen_run_start,
    mianshen_runs_mark_interrupted,
)
from kechuang.registry.models import Certification
from kechuang.testing import make_user

AS_OF = dt.date(2025, 6, 30)
HTE = "district_hte_first_reward"
GIANT = "district_little_giant_match"


def run_now(capture, policies, actor, **kwargs) -> MianshenRun:
    with capture(execute=True):
        run = mianshen_run_start(policies=policies, as_of=AS_OF, actor=actor, **kwargs)
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE, run.error
    return run


@pytest.fixture
def alice_both(alice_corp):
    """Alice's company was first recognised as 高企 last year and as a Little Giant this year."""
    Certification.objects.create(
        enterprise=alice_corp, kind="hte", number="GR202431000001", valid_from=dt.date(2024, 11, 1),
        valid_to=dt.date(2027, 10, 31),
    )
    Certification.objects.create(
        enterprise=alice_corp, kind="little_giant", number="XJR2025-001",
        valid_from=dt.date(2025, 3, 1),
    )
    return alice_corp


@pytest.mark.django_db
def test_a_run_never_pays_both_where_stacking_forbids_it(
    alice_both, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    run = run_now(django_capture_on_commit_callbacks, [HTE, GIANT], staff_zhang)
    hte = run.results.get(credit_code=alice_both.credit_code, policy_id=HTE)
    giant = run.results.get(credit_code=alice_both.credit_code, policy_id=GIANT)
    assert hte.verdict == giant.verdict == "eligible"
    assert hte.benefit > 0 and giant.benefit > 0
    higher, lower = (giant, hte) if giant.benefit >= hte.benefit else (hte, giant)
    assert higher.payable == higher.benefit
    assert lower.payable == 0
    assert "不得重复享受" in lower.stacking_note and higher.policy_id in lower.stacking_note

    # Staff exclude the higher one: the other becomes payable, never both.
    mianshen_result_exclude(result=higher, reason="另案处理", actor=staff_zhang)
    lower.refresh_from_db()
    assert lower.payable == lower.benefit and lower.stacking_note == ""
    offers = mianshen_run_confirm(run=run, actor=staff_zhang)
    assert [o.policy_id for o in offers if o.enterprise_id == alice_both.pk] == [lower.policy_id]


@pytest.mark.django_db
def test_needs_data_names_the_facts_and_the_next_run_picks_them_up(
    client, bob_corp, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    Certification.objects.create(
        enterprise=bob_corp, kind="hte", number="GR202431000002", valid_from=dt.date(2024, 12, 1),
        valid_to=dt.date(2027, 11, 30),
    )
    bob = make_user("ent_bob_finance", Role.ENTERPRISE, bob_corp)
    first = run_now(django_capture_on_commit_callbacks, [HTE], staff_zhang)
    result = first.results.get(credit_code=bob_corp.credit_code)
    assert result.verdict == "needs_data"
    assert "in_serious_dishonesty_list" in result.missing_fields
    with django_capture_on_commit_callbacks(execute=True):
        mianshen_run_confirm(run=first, actor=staff_zhang)
    notice = Notification.objects.get(user=bob)
    assert "in_serious_dishonesty_list" in notice.body
    assert f"/registry/{bob_corp.credit_code}/" in notice.url

    client.force_login(bob)

    def to_supply() -> str:
        page = client.get(reverse("calculator:mianshen_offers")).content.decode()
        return page.split('data-testid="needs-data"', 1)[1].split("</ul>", 1)[0] if (
            'data-testid="needs-data"' in page) else ""

    assert HTE in to_supply()
    # The link leads to the self-check, which says for each fact where it is kept and who
    # supplies it (the registry's own pages hold only some of them).
    page = client.get(reverse("calculator:mianshen_offers")).content.decode()
    assert reverse("calculator:selfcheck", args=[bob_corp.credit_code]) in page
    # A later confirmed run of another policy says nothing about what hte still lacks.
    other = run_now(django_capture_on_commit_callbacks, [GIANT], staff_zhang)
    with django_capture_on_commit_callbacks(execute=True):
        mianshen_run_confirm(run=other, actor=staff_zhang)
    assert HTE in to_supply()

    # The commission checks the credit lists: nothing found.
    bob_corp.compliance_checked = True
    bob_corp.save()
    second = run_now(django_capture_on_commit_callbacks, [HTE], staff_zhang)
    result = second.results.get(credit_code=bob_corp.credit_code)
    assert result.verdict == "eligible" and result.payable > 0
    with django_capture_on_commit_callbacks(execute=True):
        mianshen_run_confirm(run=second, actor=staff_zhang)
    assert HTE not in to_supply()
    # A policy whose file was since retired asks for nothing (and breaks no page).
    first.results.filter(credit_code=bob_corp.credit_code).update(policy_id="retired_policy")
    assert client.get(reverse("calculator:mianshen_offers")).status_code == 200
    assert "retired_policy" not in to_supply()


@pytest.mark.django_db
def test_an_interrupted_run_is_shown_and_can_be_resumed(
    client, alice_both, bob_corp, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    run = run_now(django_capture_on_commit_callbacks, [HTE, GIANT], staff_zhang)
    kept = {r.pk for r in run.results.filter(policy_id=HTE)}
    # The worker died while computing the second policy.
    run.results.filter(policy_id=GIANT).delete()
    MianshenRun.objects.filter(pk=run.pk).update(
        status=MianshenRun.Status.RUNNING, policies_done=[HTE], step=f"policy {GIANT}",
        heartbeat_at=timezone.now() - STALE_AFTER - dt.timedelta(seconds=1),
    )
    assert mianshen_runs_mark_interrupted() == 1
    client.force_login(staff_zhang)
    page = client.get(f"/calculator/runs/{run.pk}/").content.decode()
    assert 'data-status="interrupted"' in page and "run-resume" in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/calculator/runs/{run.pk}/resume/")
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE
    assert {r.pk for r in run.results.filter(policy_id=HTE)} == kept, "stored policies are kept"
    assert run.results.filter(policy_id=GIANT).count() == 2

    # Restart recomputes everything.
    MianshenRun.objects.filter(pk=run.pk).update(status=MianshenRun.Status.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/calculator/runs/{run.pk}/restart/")
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE
    assert not ({r.pk for r in run.results.filter(policy_id=HTE)} & kept)


@pytest.mark.django_db
def test_a_queued_run_whose_task_ended_without_running_it_can_be_resumed(
    client, alice_both, staff_zhang, django_capture_on_commit_callbacks, settings
):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with django_capture_on_commit_callbacks(execute=True):
        waiting = mianshen_run_start(policies=[HTE], as_of=AS_OF, actor=staff_zhang)
        failed = mianshen_run_start(policies=[HTE], as_of=AS_OF, actor=staff_zhang)
        vanished = mianshen_run_start(policies=[HTE], as_of=AS_OF, actor=staff_zhang)
    runs = MianshenRun.objects.filter(pk__in=[waiting.pk, failed.pk, vanished.pk])
    assert all(r.task_id for r in runs)
    assert mianshen_runs_mark_interrupted() == 0, "freshly queued runs wait for the worker"
    runs.update(created_at=timezone.now() - STALE_AFTER - dt.timedelta(seconds=1))
    assert mianshen_runs_mark_interrupted() == 0, "a long queue is not a lost task"
    # The worker failed the task before the run began; another task was deleted.
    DBTaskResult.objects.filter(id=runs.get(pk=failed.pk).task_id).update(status="FAILED")
    DBTaskResult.objects.filter(id=runs.get(pk=vanished.pk).task_id).delete()
    assert mianshen_runs_mark_interrupted() == 2
    status = dict(runs.values_list("pk", "status"))
    assert status == {waiting.pk: "queued", failed.pk: "interrupted", vanished.pk: "interrupted"}
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    client.force_login(staff_zhang)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/calculator/runs/{failed.pk}/resume/")
    failed.refresh_from_db()
    assert failed.status == MianshenRun.Status.DONE and failed.results.exists()


@pytest.mark.django_db
def test_a_running_run_cannot_be_resumed_twice(
    alice_both, staff_zhang, django_capture_on_commit_callbacks, settings
):
    from kechuang.calculator.services_runs import mianshen_run_resume
    from kechuang.errors import KechuangError

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    with django_capture_on_commit_callbacks(execute=True):
        run = mianshen_run_start(policies=[HTE], as_of=AS_OF, actor=staff_zhang)
    MianshenRun.objects.filter(pk=run.pk).update(status="running", heartbeat_at=timezone.now())
    with pytest.raises(KechuangError):
        mianshen_run_resume(run=run, actor=staff_zhang)


@pytest.mark.django_db
def test_cli_runs_inline_and_exports(alice_both, tmp_path, capsys):
    out = tmp_path / "run.xlsx"
    call_command("mianshen", "run", "--policies", f"{HTE},{GIANT}", "--as-of", "2025-06-30", "--inline")
    text = capsys.readouterr().out
    assert "done" in text and HTE in text
    run = MianshenRun.objects.get()
    assert MianshenResult.objects.filter(run=run).count() == 2
    call_command("mianshen", "status", str(run.pk))
    call_command("mianshen", "export", str(run.pk), str(out))
    assert out.stat().st_size > 0


@pytest.mark.django_db
def test_cli_refuses_an_unknown_policy(alice_corp):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nope"):
        call_command("mianshen", "run", "--policies", "nope", "--as-of", "2025-06-30", "--inline")


@pytest.mark.django_db
def test_a_run_resumed_after_stacking_still_pays_one(
    alice_both, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    from kechuang.calculator.services_runs import mianshen_run_resume

    run = run_now(django_capture_on_commit_callbacks, [HTE, GIANT], staff_zhang)
    paid = {r.policy_id: r.payable for r in run.results.filter(credit_code=alice_both.credit_code)}
    # The worker died after stacking, before it marked the run done: both policies stored.
    MianshenRun.objects.filter(pk=run.pk).update(
        status=MianshenRun.Status.INTERRUPTED, policies_done=[HTE, GIANT]
    )
    with django_capture_on_commit_callbacks(execute=True):
        mianshen_run_resume(run=run, actor=staff_zhang)
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE, run.error
    again = {r.policy_id: r.payable for r in run.results.filter(credit_code=alice_both.credit_code)}
    assert again == paid and sorted(again.values())[0] == 0


@pytest.mark.django_db
def test_a_run_resumed_without_a_recorded_facts_hash_recomputes_everything(
    alice_both, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    """On PostgreSQL a fresh run hashes its facts beside the inserts: a worker dying
    before it saved the hash leaves policies done and no hash to compare with."""
    from kechuang.calculator.services_runs import mianshen_run_resume

    run = run_now(django_capture_on_commit_callbacks, [HTE, GIANT], staff_zhang)
    digest = run.facts_hash
    kept = {r.pk for r in run.results.filter(policy_id=HTE)}
    run.results.filter(policy_id=GIANT).delete()
    MianshenRun.objects.filter(pk=run.pk).update(
        status=MianshenRun.Status.INTERRUPTED, policies_done=[HTE], facts_hash=""
    )
    with django_capture_on_commit_callbacks(execute=True):
        mianshen_run_resume(run=run, actor=staff_zhang)
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE, run.error
    assert run.facts_hash == digest
    assert not ({r.pk for r in run.results.filter(policy_id=HTE)} & kept)
    assert run.results.filter(policy_id=GIANT).count() == run.facts_count


@pytest.mark.django_db
def test_two_runs_never_offer_the_same_benefit_twice(
    alice_both, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    first = run_now(django_capture_on_commit_callbacks, [HTE], staff_zhang)
    second = run_now(django_capture_on_commit_callbacks, [HTE], staff_zhang)
    third = run_now(django_capture_on_commit_callbacks, [GIANT], staff_zhang)
    offered = mianshen_run_confirm(run=first, actor=staff_zhang)
    assert [o.policy_id for o in offered if o.enterprise_id == alice_both.pk] == [HTE]
    # The same policy in another run, and a policy that may not be paid with it.
    assert not [o for o in mianshen_run_confirm(run=second, actor=staff_zhang)
                if o.enterprise_id == alice_both.pk]
    assert not [o for o in mianshen_run_confirm(run=third, actor=staff_zhang)
                if o.enterprise_id == alice_both.pk]
    held = second.results.get(credit_code=alice_both.credit_code, policy_id=HTE)
    assert held.payable == 0 and f"#{first.pk}" in held.stacking_note
    assert f"#{first.pk}" in third.results.get(
        credit_code=alice_both.credit_code, policy_id=GIANT
    ).stacking_note


@pytest.mark.django_db
def test_the_rule_holds_whichever_policy_of_the_pair_was_offered_first(
    alice_both, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    # Only the Little Giant file declares the rule; the HTE reward comes second here.
    giant = run_now(django_capture_on_commit_callbacks, [GIANT], staff_zhang)
    hte = run_now(django_capture_on_commit_callbacks, [HTE], staff_zhang)
    assert [o.policy_id for o in mianshen_run_confirm(run=giant, actor=staff_zhang)
            if o.enterprise_id == alice_both.pk] == [GIANT]
    assert not [o for o in mianshen_run_confirm(run=hte, actor=staff_zhang)
                if o.enterprise_id == alice_both.pk]


@pytest.mark.django_db
def test_a_slow_worker_taken_for_stopped_but_not_resumed_finishes_its_run(
    alice_both, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    from kechuang.calculator import runs as run_sql
    from kechuang.calculator import services_runs

    run = run_now(django_capture_on_commit_callbacks, [HTE], staff_zhang)
    real_insert = run_sql.insert_results

    def slow_insert(*args, **kwargs):
        real_insert(*args, **kwargs)
        # One long INSERT without a heartbeat: a page marks the run interrupted.
        MianshenRun.objects.filter(pk=run.pk).update(
            heartbeat_at=timezone.now() - STALE_AFTER - dt.timedelta(seconds=1)
        )
        mianshen_runs_mark_interrupted()

    MianshenRun.objects.filter(pk=run.pk).update(status=MianshenRun.Status.QUEUED, policies_done=[])
    monkeypatch.setattr(run_sql, "insert_results", slow_insert)
    services_runs.mianshen_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE and run.policies_done == [HTE]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_confirmed_at_once_offer_the_benefit_once(alice_both, staff_zhang, settings):
    from kechuang.calculator import services_runs
    from kechuang.calculator.models_runs import MianshenOffer
    from kechuang.testing import run_clients

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    done = []
    for _ in range(2):
        run = mianshen_run_start(policies=[HTE], as_of=AS_OF, actor=staff_zhang)
        done.append(services_runs.mianshen_run_execute(run_id=run.pk))
    assert all(r.status == MianshenRun.Status.DONE for r in done)
    results = run_clients(
        [lambda r=r: mianshen_run_confirm(run=r, actor=staff_zhang) for r in done]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert MianshenOffer.objects.filter(enterprise=alice_both, policy_id=HTE).count() == 1


@pytest.mark.django_db
def test_a_run_is_not_paid_under_a_law_changed_since_it_ran(
    alice_both, staff_zhang, admin_root, immediate_tasks, django_capture_on_commit_callbacks
):
    from decimal import Decimal

    from kechuang.calculator import reforms, runs, services_law
    from kechuang.errors import KechuangError
    from kechuang.rules import get_policy

    run = run_now(django_capture_on_commit_callbacks, [HTE], staff_zhang)
    amount = get_policy(HTE).parameters["reward_amount"].at(AS_OF).value
    reform = reforms.reform_create(
        policy_id=HTE, name="追溯上调", overrides={"reward_amount": str(Decimal(runs.decimal_text(amount)) + 1)},
        actor=staff_zhang, as_of=AS_OF,
    )
    services_law.parameter_publish(
        reform=reform, parameters=["reward_amount"], effective_from=dt.date(2025, 1, 1),
        document_number="普科委〔2025〕9号", article="第一条", actor=admin_root,
    )
    with pytest.raises(KechuangError, match="changed since this run"):
        mianshen_run_confirm(run=run, actor=staff_zhang)
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE and not run.offers.exists()
    # A value published for a later date changes nothing the run decided.
    later = run_now(django_capture_on_commit_callbacks, [HTE], staff_zhang)
    services_law.parameter_publish(
        reform=reform, parameters=["reward_amount"], effective_from=dt.date(2027, 1, 1),
        document_number="普科委〔2026〕2号", article="第一条", actor=admin_root,
    )
    assert mianshen_run_confirm(run=later, actor=staff_zhang)


@pytest.mark.django_db
def test_a_worker_taken_for_stopped_writes_nothing_once_another_has_finished(
    alice_both, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    from kechuang.calculator import runs as run_sql
    from kechuang.calculator import services_runs

    run = run_now(django_capture_on_commit_callbacks, [HTE], staff_zhang)
    real_insert = run_sql.insert_results
    taken_over = []

    def slow_insert(*args, **kwargs):
        real_insert(*args, **kwargs)
        if not taken_over:
            # While this worker is inside its INSERT: taken for stopped, resumed by another
            # worker, which finishes, and staff confirm.
            taken_over.append(True)
            MianshenRun.objects.filter(pk=run.pk).update(
                heartbeat_at=timezone.now() - STALE_AFTER - dt.timedelta(seconds=1)
            )
            assert mianshen_runs_mark_interrupted() == 1
            services_runs.mianshen_run_execute(run_id=run.pk)
            mianshen_run_confirm(run=MianshenRun.objects.get(pk=run.pk), actor=staff_zhang)

    MianshenRun.objects.filter(pk=run.pk).update(status=MianshenRun.Status.QUEUED, policies_done=[])
    monkeypatch.setattr(run_sql, "insert_results", slow_insert)
    services_runs.mianshen_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert taken_over and run.status == MianshenRun.Status.CONFIRMED
    assert run.offers.count() == 1
