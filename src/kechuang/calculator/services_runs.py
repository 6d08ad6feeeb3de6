"""Everything that writes 免申即享 runs, their review, offers, benefits and notices.

Names follow ``<entity>_<action>``: ``mianshen_run_start`` queues a run,
``mianshen_run_execute`` is the background task's body, ``mianshen_result_exclude``
and ``mianshen_run_confirm`` are the staff review, ``mianshen_offer_accept`` the
enterprise's one step (意愿确认 + bank account) that creates the benefit record.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from kechuang.accounts.models import Role, User
from kechuang.accounts.services import audit_record
from kechuang.calculator import law, runs
from kechuang.calculator.models_runs import (
    BenefitRecord,
    MianshenOffer,
    MianshenResult,
    MianshenRun,
    Notification,
    Reform,
)
from kechuang.calculator.selectors import application_inputs
from kechuang.errors import KechuangError, checked_text
from kechuang.registry.selectors import enterprise_list
from kechuang.rules import NotInForce, get_policy, policy_ids

log = logging.getLogger(__name__)

SCOPE_KEYS = ("street", "industry_code", "certification")

#: Policies inserted at the same time on PostgreSQL (each on its own connection).
PARALLEL_INSERTS = 3
#: Slices a long policy is inserted in, on PostgreSQL (see ``_execute``).
SLICES = 3

#: A running run whose worker has not reported for this long is shown as interrupted.
STALE_AFTER = dt.timedelta(seconds=120)
#: The advisory lock every confirmation takes on PostgreSQL (any fixed number).
CONFIRM_LOCK = 0x6B63_6D73


# --------------------------------------------------------------------------- start


def _clean_scope(scope: dict[str, Any] | None) -> dict[str, str]:
    scope = {k: str(v).strip() for k, v in (scope or {}).items() if v not in (None, "")}
    unknown = set(scope) - set(SCOPE_KEYS)
    if unknown:
        raise KechuangError(f"unknown scope filter(s): {', '.join(sorted(unknown))}", field="scope")
    return {k: v for k, v in scope.items() if v}


def mianshen_run_start(
    *,
    policies: list[str],
    as_of: dt.date,
    actor: User | None,
    scope: dict[str, Any] | None = None,
    reform: Reform | None = None,
    baseline: MianshenRun | None = None,
    is_baseline: bool = False,
) -> MianshenRun:
    """Queue a run; the worker picks it up once this transaction commits.

    ``is_baseline``: the law-in-force side of a reform's comparison, never paid."""
    ids = runs.check_policies(policies)
    for pid in ids:
        per_application = application_inputs(get_policy(pid))
        if per_application:
            raise KechuangError(
                f"{pid} 需逐项申请提供的数据（{', '.join(per_application)}），不能对企业库批量比对 / "
                f"{pid} needs the facts of each application ({', '.join(per_application)}): "
                "it cannot be run over the registry",
                field="policies",
            )
    if not isinstance(as_of, dt.date):
        raise KechuangError("as_of must be a date", field="as_of")
    for pid in ids:
        # Refused now, not as a failed run: every decision would be needs_data naming nothing.
        try:
            law.policy_in_force(pid).require_in_force(as_of)
        except NotInForce as exc:
            raise KechuangError(str(exc), field="as_of") from None
    if reform is not None and reform.policy_id not in ids:
        raise KechuangError("the reform's policy is not in the run", field="policies")
    with transaction.atomic():
        run = MianshenRun.objects.create(
            policies=ids,
            as_of=as_of,
            scope=_clean_scope(scope),
            reform=reform,
            baseline=baseline,
            is_baseline=is_baseline,
            created_by=actor,
            steps_total=len(ids) + 4,
        )
        audit_record(
            actor=actor,
            action="mianshen_run_start",
            obj_type="mianshen_run",
            obj_id=run.pk,
            before=None,
            after={
                "policies": ids,
                "as_of": as_of,
                "scope": run.scope,
                "reform": reform and reform.pk,
            },
        )
        _enqueue(run)
    return run


def _enqueue(run: MianshenRun) -> None:
    from kechuang.calculator.tasks import mianshen_run_task

    def go() -> None:
        result = mianshen_run_task.enqueue(run.pk)
        # An immediate backend has finished the run by now: do not overwrite it.
        MianshenRun.objects.filter(pk=run.pk).update(task_id=str(result.id))

    transaction.on_commit(go)


def mianshen_run_resume(*, run: MianshenRun, actor: User | None) -> MianshenRun:
    """Queue an interrupted or failed run again; policies already stored are kept."""
    return _requeue(run, actor, restart=False)


def mianshen_run_restart(*, run: MianshenRun, actor: User | None) -> MianshenRun:
    """Queue an interrupted or failed run again from the start."""
    return _requeue(run, actor, restart=True)


def _requeue(run: MianshenRun, actor: User | None, *, restart: bool) -> MianshenRun:
    with transaction.atomic():
        # Lock the run: two staff pressing "resume" must not start two workers on it.
        run = MianshenRun.objects.select_for_update().get(pk=run.pk)
        mianshen_runs_mark_interrupted()
        run.refresh_from_db()
        if run.status not in (MianshenRun.Status.INTERRUPTED, MianshenRun.Status.FAILED):
            raise KechuangError(
                "只有中断或失败的运行可以继续或重新开始 / only an interrupted or failed run can be resumed"
            )
        if restart:
            runs.delete_results(run.pk)
            run.policies_done = []
            run.facts_hash = ""
        run.status = MianshenRun.Status.QUEUED
        run.error = ""
        run.step = ""
        # The ended task is no longer this run's (its new one is set once enqueued).
        run.task_id = ""
        run.save()
        audit_record(
            actor=actor,
            action="mianshen_run_restart" if restart else "mianshen_run_resume",
            obj_type="mianshen_run",
            obj_id=run.pk,
            before=None,
            after={"policies_done": run.policies_done},
        )
        _enqueue(run)
    return run


def mianshen_runs_mark_interrupted(now: dt.datetime | None = None) -> int:
    """Mark runs no worker will finish as interrupted, so that staff can resume or
    restart them: running runs whose worker stopped reporting, and queued runs whose
    task ended (or vanished) without running them. Returns how many."""
    now = now or timezone.now()
    stopped = MianshenRun.objects.filter(
        status=MianshenRun.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    ).update(status=MianshenRun.Status.INTERRUPTED, step="worker stopped (中断)")
    lost = [
        pk
        for pk, task_id in MianshenRun.objects.filter(
            status=MianshenRun.Status.QUEUED, created_at__lt=now - STALE_AFTER
        ).exclude(task_id="").values_list("pk", "task_id")
        if _task_ended(task_id)
    ]
    if lost:
        stopped += MianshenRun.objects.filter(
            pk__in=lost, status=MianshenRun.Status.QUEUED
        ).update(
            status=MianshenRun.Status.INTERRUPTED,
            step="task ended without running the run (任务未执行)",
        )
    return stopped


def _task_ended(task_id: str) -> bool:
    """Whether the background task ``task_id`` has finished or no longer exists."""
    from django_tasks import TaskResultStatus
    from django_tasks.exceptions import TaskResultDoesNotExist

    from kechuang.calculator.tasks import mianshen_run_task

    try:
        status = mianshen_run_task.get_result(task_id).status
    except TaskResultDoesNotExist:
        return True
    except NotImplementedError:  # a backend that keeps no results cannot tell
        return False
    return status in (TaskResultStatus.FAILED, TaskResultStatus.SUCCESSFUL)


# --------------------------------------------------------------------------- execute


class Superseded(Exception):
    """This worker no longer owns the run: it was taken for stopped and resumed (or
    restarted) by another, or the run was finished since. It must write nothing more."""


def _owned(run: MianshenRun):
    # Interrupted but not resumed is still this worker's: a slow step (one long INSERT)
    # is taken for stopped, and the worker carries on (its next step marks it running).
    return MianshenRun.objects.filter(
        pk=run.pk,
        status__in=(MianshenRun.Status.RUNNING, MianshenRun.Status.INTERRUPTED),
        attempt=run.attempt,
    )


def _still_owned(run: MianshenRun) -> None:
    # Before replacing stored results: a superseded worker must not undo what the
    # worker that finished stored (or exclusions staff made since). Not a lock, so that
    # the slices still insert in parallel; the final step takes the lock.
    if not _owned(run).exists():
        raise Superseded(run.pk)


def _progress(run: MianshenRun, step: str, **fields: Any) -> None:
    run.step = step
    run.heartbeat_at = timezone.now()
    for k, v in fields.items():
        setattr(run, k, v)
    fields.setdefault("status", MianshenRun.Status.RUNNING)
    updated = _owned(run).update(
        step=step, heartbeat_at=run.heartbeat_at, steps_done=run.steps_done, **fields
    )
    if not updated:
        raise Superseded(run.pk)


def mianshen_run_execute(*, run_id: int) -> MianshenRun:
    """Run the policies over the facts inside the database and store every result.

    Steps: facts into a temporary table; their hash; per policy one ``INSERT … SELECT``
    of the compiled query; stacking rules. Each step reports progress and a heartbeat.
    A resumed run keeps the policies already stored, provided the facts have not changed."""
    started = time.monotonic()
    with transaction.atomic():
        run = MianshenRun.objects.select_for_update().get(pk=run_id)
        if run.status not in (MianshenRun.Status.QUEUED, MianshenRun.Status.INTERRUPTED):
            return run  # already done, or another worker has it
        run.status = MianshenRun.Status.RUNNING
        run.attempt += 1
        run.started_at = run.started_at or timezone.now()
        run.heartbeat_at = timezone.now()
        run.steps_done = 0
        run.save(update_fields=["status", "attempt", "started_at", "heartbeat_at", "steps_done"])
    try:
        _execute(run, started)
    except Superseded:
        log.warning("mianshen run %s: attempt %s superseded, stopped", run.pk, run.attempt)
    except Exception as e:  # the run must show why it failed; the worker logs the trace
        log.exception("mianshen run %s failed", run.pk)
        _owned(run).update(
            status=MianshenRun.Status.FAILED,
            error=f"{type(e).__name__}: {e}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    # The run's facts table stays: it is what the run read (see runs.materialise_facts).
    run.refresh_from_db()
    return run


def _execute(run: MianshenRun, started: float) -> None:
    overrides = run.reform.overrides if run.reform_id else {}
    reform_policy = run.reform.policy_id if run.reform_id else None
    ids = None
    if run.scope:
        ids = list(enterprise_list(as_of=run.as_of, **run.scope).values_list("pk", flat=True))
    run.steps_done = 0
    _progress(run, "facts")
    # With nothing stored yet the hash decides nothing before the inserts: on PostgreSQL
    # it is computed on a connection of its own beside them (half a second on one core
    # at 100,000 enterprises), after the facts' index for result pages, and saved once
    # the inserts are done.
    hash_beside = runs.parallel_inserts() and not run.policies_done
    count = runs.materialise_facts(run.pk, run.as_of, ids, index=not hash_beside)
    run.steps_done = 1
    _progress(run, "hash", facts_count=count)
    digest = "" if hash_beside else runs.facts_hash(run.pk)
    if run.policies_done and run.facts_hash != digest:
        # Resuming over changed data would mix two registries in one run; without a
        # recorded hash (the worker died before saving it) nothing says they are the same.
        runs.delete_results(run.pk)
        run.policies_done = []
    run.steps_done = 2
    # policies_done is saved with the step: a worker dying next must not find the
    # deleted policies still marked done.
    _progress(run, "compile", facts_hash=digest, policies_done=list(run.policies_done))

    hashes, files, params, columns, benefits = {}, {}, {}, {}, {}
    done = list(run.policies_done)
    todo = []
    for pid in run.policies:
        policy = runs.resolve_policy(pid, overrides if pid == reform_policy else None, run.as_of)
        compiled = runs.compile_for_run(policy, run.as_of, run.pk)
        benefit = runs.benefit_output(policy)
        if pid in done and run.policy_hashes.get(pid, policy.sha256) != policy.sha256:
            # A value published (or withdrawn) since the run stopped changed this
            # policy's law: computed again, so that one run reads one law throughout.
            done.remove(pid)
        hashes[pid] = policy.sha256
        files[pid] = get_policy(pid).sha256
        params[pid] = runs.parameters_at(policy, run.as_of)
        # Results already stored decode with the column map they were written with.
        kept = run.columns.get(pid) if pid in done else None
        columns[pid] = kept or runs.column_spec(compiled)
        benefits[pid] = list(benefit) if benefit else None
        if pid not in done:
            todo.append((pid, policy, compiled, benefit))
    # Nothing kept from before this worker: every result is inserted now, each paying its
    # own benefit with no note, and stacking has nothing to reset. (Not read from
    # run.policies_done later: _progress keeps that attribute current.)
    fresh = not done
    run.steps_done += 1
    # With policies_done: a policy to compute again under a changed law is no longer
    # marked done once the new hashes are saved, even if the worker dies right after.
    _progress(run, "compiled", policy_hashes=hashes, policy_files=files, parameters=params, columns=columns,
              benefit_outputs=benefits, policies_done=list(done))
    hasher = ThreadPoolExecutor(max_workers=1) if hash_beside else None
    hashed = hasher.submit(_in_thread, _index_and_hash, run.pk) if hasher else None
    try:
        _insert_all(run, todo, done)
    finally:
        if hasher is not None:
            hasher.shutdown()
    if hashed is not None:
        _progress(run, "hashed", facts_hash=hashed.result())
    with transaction.atomic():
        # Checked and kept under the run's lock: a worker taken for stopped must not
        # stack or finish a run another worker has finished (or staff have confirmed).
        if not _owned(run).select_for_update().exists():
            raise Superseded(run.pk)
        # A resumed run may hold results stacked before it stopped: reset those.
        apply_stacking(run, fresh=fresh)
        run.steps_done = run.steps_total  # a resumed run skipped the policies it had
        now = timezone.now()
        _progress(
            run, "done", status=MianshenRun.Status.DONE, finished_at=now,
            duration_ms=int((time.monotonic() - started) * 1000),
        )


def _index_and_hash(run_id: int) -> str:
    runs.index_facts(run_id)
    return runs.facts_hash(run_id)


def _insert_all(run: MianshenRun, todo: list, done: list[str]) -> None:
    """Insert the results of the policies in ``todo``; each is added to ``done`` (and
    saved as done) once all its rows are stored."""
    lock = threading.Lock()

    def insert(pid, policy, compiled, benefit) -> None:
        with transaction.atomic():
            _still_owned(run)
            runs.delete_results(run.pk, pid)
            runs.insert_results(run.pk, policy, compiled, benefit)
        finished(pid)

    def finished(pid) -> None:
        with lock:
            # One writer of the progress fields at a time (threads share the run).
            done.append(pid)
            run.steps_done += 1
            _progress(run, f"policy {pid}", policies_done=list(done))

    if runs.parallel_inserts() and len(todo) > 1:
        # PostgreSQL, outside any transaction: the policies on several connections at
        # once. A long policy (hte's query is ten times a district pack's) is split into
        # slices of the registry, each deleted and inserted in its own transaction, so
        # that no connection is left running one long query alone at the end.
        longest = max(len(item[2].sql) for item in todo)
        parts_left: dict[str, int] = {}
        jobs = []
        for pid, policy, compiled, benefit in todo:
            n = SLICES if len(compiled.sql) * 2 > longest else 1
            parts_left[pid] = n
            for i in range(n):
                part = (i, n) if n > 1 else None
                jobs.append((len(compiled.sql) / n, pid, policy, compiled, benefit, part))
        jobs.sort(key=lambda job: job[0], reverse=True)

        def insert_part(pid, policy, compiled, benefit, part) -> None:
            if part is not None:
                compiled = runs.compile_for_run(policy, run.as_of, run.pk, part)
            with transaction.atomic():
                _still_owned(run)
                runs.delete_results(run.pk, pid, part)
                runs.insert_results(run.pk, policy, compiled, benefit)
            with lock:
                parts_left[pid] -= 1
                last = parts_left[pid] == 0
            if last:
                finished(pid)

        with ThreadPoolExecutor(max_workers=min(PARALLEL_INSERTS, len(jobs))) as pool:
            futures = [pool.submit(_in_thread, insert_part, *job[1:]) for job in jobs]
            for f in futures:
                f.result()
    else:
        for item in todo:
            insert(*item)


def _in_thread(fn, *args) -> Any:
    from django.db import connection

    try:
        return fn(*args)
    finally:
        connection.close()  # this thread's own connection


# --------------------------------------------------------------------------- stacking


def apply_stacking(run: MianshenRun, *, fresh: bool = False) -> int:
    """Set each result's payable amount under the run's stacking rules (不得重复享受).

    Only eligible, not excluded results with a positive benefit are paid. Where a rule
    forbids paying two benefits, the one not paid (or the capped one) gets payable 0
    (or the remainder) and a note citing the rule. Returns the results changed.

    ``fresh``: the results were just inserted, each with its own benefit as payable and
    no note, so there is nothing to reset first."""
    rules = [
        r
        for pid in run.policies
        for r in runs.stacking_rules(get_policy(pid))
        if r.other in run.policies
    ]
    base = MianshenResult.objects.filter(run=run)
    # Start from what each policy alone would pay, touching only the rows that differ
    # (a run has hundreds of thousands of results; a few are stacked or excluded).
    paid = Q(verdict="eligible", excluded=False, benefit__gt=0)
    if not fresh:
        base.exclude(stacking_note="").update(stacking_note="")
        base.filter(paid).filter(Q(payable__isnull=True) | ~Q(payable=_F("benefit"))).update(
            payable=_F("benefit")
        )
        base.exclude(paid).filter(payable__isnull=False).update(payable=None)
    if not rules:
        return 0
    involved = {r.policy for r in rules} | {r.other for r in rules}
    rows: dict[str, dict[str, MianshenResult]] = {}
    # Only eligible results are ever payable; saying so, in no particular order, lets
    # the index of the rows to review find them even before the new run's rows have
    # statistics (ordered by credit code, the planner walked the whole run's rows).
    payable = base.filter(policy_id__in=involved, verdict="eligible", payable__gt=0)
    for res in payable.order_by().only("credit_code", "policy_id", "payable", "stacking_note"):
        rows.setdefault(res.credit_code, {})[res.policy_id] = res
    changed: list[MianshenResult] = []
    for by_policy in rows.values():
        for rule in rules:
            a, b = by_policy.get(rule.policy), by_policy.get(rule.other)
            if a is None or b is None or not a.payable or not b.payable:
                continue
            if rule.kind == "excludes":
                keep, drop = a, b
                if rule.keep == "higher" and b.payable > a.payable:
                    keep, drop = b, a
                drop.payable = Decimal("0")
                drop.stacking_note = (
                    f"不得重复享受 not paid with {keep.policy_id}: {rule.policy} excludes {rule.other}"
                    f" ({'就高' if rule.keep == 'higher' else rule.policy}); {rule.article}"
                ).strip("; ")
                changed.append(drop)
            elif rule.kind == "caps" and rule.total_parameter:
                policy = law.policy_in_force(rule.policy)
                entry = policy.parameters[rule.total_parameter].at(run.as_of)
                if entry is None or entry.value is None:
                    continue
                total = Decimal(runs.decimal_text(entry.value))
                room = max(Decimal("0"), total - a.payable)
                if b.payable > room:
                    b.payable = room
                    b.stacking_note = (
                        f"合计封顶 capped: {rule.policy} + {rule.other} at most {total} "
                        f"({rule.total_parameter}); {rule.article}"
                    ).strip("; ")
                    changed.append(b)
    MianshenResult.objects.bulk_update(changed, ["payable", "stacking_note"], batch_size=2000)
    return len(changed)


def _F(name: str):
    from django.db.models import F

    return F(name)


# --------------------------------------------------------------------------- review


def mianshen_result_exclude(*, result: MianshenResult, reason: str, actor: User) -> MianshenResult:
    """Exclude an enterprise's result from payment, with a written reason (audited)."""
    reason = (reason or "").strip()
    if not reason:
        raise KechuangError("请填写排除理由 / a written reason is required", field="reason")
    checked_text(MianshenResult, "exclusion_reason", reason, label="reason")
    with transaction.atomic():
        run = MianshenRun.objects.select_for_update().get(pk=result.run_id)
        if run.reform_id or run.is_baseline:
            raise KechuangError("改革试算不作审核 / a what-if run is not reviewed")
        if run.status != MianshenRun.Status.DONE:
            raise KechuangError(
                "只能在确认前排除 / only a finished, unconfirmed run can be reviewed"
            )
        result = MianshenResult.objects.select_for_update().get(pk=result.pk)
        before = {"excluded": result.excluded, "reason": result.exclusion_reason}
        result.excluded = True
        result.exclusion_reason = reason
        result.save(update_fields=["excluded", "exclusion_reason"])
        audit_record(
            actor=actor,
            action="mianshen_result_exclude",
            obj_type="mianshen_result",
            obj_id=f"{run.pk}/{result.credit_code}/{result.policy_id}",
            before=before,
            after={"excluded": True, "reason": reason},
            note=reason,
        )
        apply_stacking(run)
    result.refresh_from_db()
    return result


def _one_confirmation_at_a_time() -> None:
    """Hold, until this transaction ends, a lock every confirmation takes: two runs
    confirmed at once would each find the other's offers not yet written, and both pay."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CONFIRM_LOCK])
    else:
        # SQLite: the first write takes the database's write lock for the transaction,
        # so a second confirmation waits here until this one has committed.
        MianshenRun.objects.filter(pk=-1).update(step="")


def _values(parameters: dict[str, Any]) -> dict[str, list[str]]:
    return {name: [e["value"] for e in entries] for name, entries in parameters.items()}


def _require_law_unchanged(run: MianshenRun) -> None:
    """Refuse to pay under a law other than the one the run computed: a policy file
    changed, or a value published or withdrawn since (even dated back) for the run's
    date, changes what the enterprises are owed. A value published for a later date
    changes nothing here."""
    for pid in run.policies:
        now = runs.resolve_policy(pid, None, run.as_of)
        if pid in run.policy_files:
            same_file = run.policy_files[pid] == get_policy(pid).sha256
        else:  # a run from before files were recorded: its whole law must be the same
            same_file = run.policy_hashes.get(pid) == now.sha256
        same_values = _values(run.parameters.get(pid, {})) == _values(
            runs.parameters_at(now, run.as_of)
        )
        if not (same_file and same_values):
            raise KechuangError(
                f"政策 {pid} 的现行规定自本次比对以来已变更，请重新比对 / the law of {pid} "
                "has changed since this run (a value was published or withdrawn): start a new run",
                field="policies",
            )


def _hold_what_was_offered_before(run: MianshenRun) -> int:
    """Pay nothing a confirmed run has already offered the same enterprise: the same
    policy, or one that a stacking rule says is not paid with it (不得重复享受). Runs over
    overlapping scopes, or a run confirmed twice over the same year, would otherwise pay
    twice. Such a result is left unpaid with a note naming the earlier run; a benefit
    that truly recurs is decided by staff, not paid again automatically."""
    # Every policy's rules: a rule may be written on either side of the pair, and the
    # earlier offer may be of a policy this run does not hold.
    rules = [r for pid in policy_ids() for r in runs.stacking_rules(get_policy(pid))]
    pairs = {(r.policy, r.other) for r in rules if r.kind == "excludes"}
    pairs |= {(b, a) for a, b in pairs}
    payable = run.results.filter(verdict="eligible", excluded=False, payable__gt=0)
    results = list(payable.only("id", "enterprise_id", "policy_id", "payable", "stacking_note"))
    earlier: dict[int, list[tuple[str, int]]] = {}
    # A subquery, not a list of ids: a district's payable results may outnumber the
    # parameters SQLite takes in one statement.
    for offer in MianshenOffer.objects.filter(
        enterprise_id__in=payable.values("enterprise_id")
    ).exclude(run=run).values("enterprise_id", "policy_id", "run_id"):
        earlier.setdefault(offer["enterprise_id"], []).append((offer["policy_id"], offer["run_id"]))
    held = []
    for r in results:
        for policy_id, run_id in earlier.get(r.enterprise_id, ()):
            if policy_id == r.policy_id or (r.policy_id, policy_id) in pairs:
                r.payable = Decimal("0")
                r.stacking_note = (
                    f"已在运行 #{run_id} 中发放 {policy_id} / already offered {policy_id} "
                    f"in run #{run_id}: not paid again"
                )
                held.append(r)
                break
    MianshenResult.objects.bulk_update(held, ["payable", "stacking_note"], batch_size=2000)
    return len(held)


def mianshen_run_confirm(*, run: MianshenRun, actor: User) -> list[MianshenOffer]:
    """Confirm a reviewed run: an offer per payable result, a notice and an email to
    each enterprise; enterprises told ``needs_data`` get the facts to supply."""
    with transaction.atomic():
        # Lock: a double click must not offer the same benefit twice.
        run = MianshenRun.objects.select_for_update().get(pk=run.pk)
        if run.reform_id or run.is_baseline:
            raise KechuangError("what-if reform runs are never paid / 改革试算不能确认")
        if run.status != MianshenRun.Status.DONE:
            raise KechuangError(
                "只能确认已完成且未确认的运行 / only a finished, unconfirmed run can be confirmed"
            )
        _require_law_unchanged(run)
        _one_confirmation_at_a_time()
        apply_stacking(run)
        _hold_what_was_offered_before(run)
        payable = list(
            run.results.filter(verdict="eligible", excluded=False, payable__gt=0)
            .select_related("enterprise")
        )
        offers = MianshenOffer.objects.bulk_create(
            [
                MianshenOffer(
                    run=run,
                    result=r,
                    enterprise=r.enterprise,
                    policy_id=r.policy_id,
                    amount=r.payable,
                )
                for r in payable
            ]
        )
        run.status = MianshenRun.Status.CONFIRMED
        run.confirmed_at = timezone.now()
        run.confirmed_by = actor
        run.save(update_fields=["status", "confirmed_at", "confirmed_by"])
        audit_record(
            actor=actor,
            action="mianshen_run_confirm",
            obj_type="mianshen_run",
            obj_id=run.pk,
            before={"status": MianshenRun.Status.DONE},
            after={
                "status": run.status,
                "offers": len(offers),
                "total": str(sum((o.amount for o in offers), Decimal("0"))),
            },
        )
        _notify_offers(run, offers)
        _notify_needs_data(run)
    return offers


def _policy_title(pid: str) -> str:
    return get_policy(pid).title.zh


def _notify(enterprise_id: int, email: str, title: str, body: str, url: str) -> list[tuple]:
    users = list(
        User.objects.filter(role=Role.ENTERPRISE, enterprise_id=enterprise_id, is_active=True)
    )
    Notification.objects.bulk_create(
        [Notification(user=u, title=title, body=body, url=url) for u in users]
    )
    to = sorted({a for a in [email, *(u.email for u in users)] if a})
    return [(title, f"{body}\n\n{url}", settings.DEFAULT_FROM_EMAIL, to)] if to else []


def _send_after_commit(mails: list) -> None:
    """Send the emails of a decision already committed. A mail server that fails must
    not turn a confirmation that happened into an error page (staff would think it did
    not): the in-app notifications stand, and the failure is logged for the operator."""
    try:
        send_mass_mail(mails, fail_silently=False)
    except Exception:
        log.exception("notification emails failed (%d); in-app notifications stand", len(mails))


def _notify_offers(run: MianshenRun, offers: list[MianshenOffer]) -> None:
    by_ent: dict[int, list[MianshenOffer]] = {}
    for o in offers:
        by_ent.setdefault(o.enterprise_id, []).append(o)
    mails = []
    url = reverse("calculator:mianshen_offers")
    for _ent_id, items in by_ent.items():
        ent = items[0].enterprise
        lines = [f"- {_policy_title(o.policy_id)}（{o.policy_id}）：{o.amount} 元" for o in items]
        body = (
            f"{ent.name}：根据区科委掌握的数据（基准日 {run.as_of}），贵企业无需申请即可享受以下政策：\n"
            + "\n".join(lines)
            + "\n请登录平台确认受领意愿并填写收款银行账户（数据比对 → 意愿确认 → 拨付到账）。\n"
            "Your enterprise qualifies without applying for: "
            + ", ".join(o.policy_id for o in items)
            + ". Please confirm and give your bank account on the platform."
        )
        mails += _notify(
            ent.pk, ent.contact_email, "免申即享政策待确认 / benefit without application", body, url
        )
    transaction.on_commit(lambda: _send_after_commit(mails))


def _notify_needs_data(run: MianshenRun) -> None:
    rows = (
        run.results.filter(verdict="needs_data")
        .select_related("enterprise")
        .order_by("credit_code")
    )
    by_ent: dict[int, list[MianshenResult]] = {}
    for r in rows:
        by_ent.setdefault(r.enterprise_id, []).append(r)
    mails = []
    for _ent_id, items in by_ent.items():
        ent = items[0].enterprise
        url = reverse("registry:enterprise_detail", args=[ent.credit_code])
        lines = [
            f"- {_policy_title(r.policy_id)}："
            + ("、".join(runs.missing_labels(r.policy_id, run.as_of, r.missing_fields)) or "—")
            for r in items
        ]
        body = (
            f"{ent.name}：免申即享比对（基准日 {run.as_of}）缺少以下数据，补充后下次比对将自动纳入：\n"
            + "\n".join(lines)
            + "\nSome facts are missing; supply them and the next run will pick them up."
        )
        mails += _notify(
            ent.pk, ent.contact_email, "请补充企业数据 / please supply missing facts", body, url
        )
    transaction.on_commit(lambda: _send_after_commit(mails))


def mianshen_offer_accept(
    *, offer: MianshenOffer, bank_name: str, bank_account: str, actor: User
) -> BenefitRecord:
    """The enterprise confirms its wish and its bank account in one step (意愿确认);
    the benefit record for the payment workflow (拨付到账) is created now, once."""
    bank_name, bank_account = (bank_name or "").strip(), "".join((bank_account or "").split())
    if not bank_name:
        raise KechuangError("请填写开户银行 / bank name required", field="bank_name")
    checked_text(MianshenOffer, "bank_name", bank_name)
    if not bank_account.isdigit() or not 8 <= len(bank_account) <= 30:
        raise KechuangError(
            "银行账号应为8–30位数字 / bank account: 8-30 digits", field="bank_account"
        )
    with transaction.atomic():
        # Lock the offer: a double submit must not create two benefit records.
        offer = MianshenOffer.objects.select_for_update().get(pk=offer.pk)
        if offer.status != MianshenOffer.Status.OFFERED:
            raise KechuangError("该政策已确认 / already confirmed")
        offer.status = MianshenOffer.Status.ACCEPTED
        offer.bank_name, offer.bank_account = bank_name, bank_account
        offer.accepted_at = timezone.now()
        offer.accepted_by = actor
        offer.save()
        record = BenefitRecord.objects.create(
            offer=offer,
            enterprise_id=offer.enterprise_id,
            policy_id=offer.policy_id,
            amount=offer.amount,
            bank_name=bank_name,
            bank_account=bank_account,
        )
        audit_record(
            actor=actor,
            action="mianshen_offer_accept",
            obj_type="mianshen_offer",
            obj_id=offer.pk,
            before={"status": MianshenOffer.Status.OFFERED},
            after={
                "status": offer.status,
                "amount": offer.amount,
                "bank_account": bank_account[-4:],
            },
        )
    return record


def notification_mark_read(*, user: User, notification_id: int) -> None:
    Notification.objects.filter(Q(pk=notification_id) & Q(user=user)).update(read_at=timezone.now())
