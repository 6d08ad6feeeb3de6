"""``kechuang mianshen``: 免申即享 runs from the command line.

    kechuang mianshen run --policies district_hte_first_reward,district_little_giant_match \\
        --as-of 2025-06-30 [--street 长风新村街道] [--industry-code 65] [--certification hte] \\
        [--wait | --inline]
    kechuang mianshen status RUN_ID
    kechuang mianshen resume RUN_ID | restart RUN_ID
    kechuang mianshen export RUN_ID OUT.xlsx

``run`` queues the run for the worker (``kechuang db_worker``); ``--wait`` then prints
its progress until it finishes; ``--inline`` runs it in this process instead.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kechuang.calculator import selectors_runs, services_runs
from kechuang.calculator.models_runs import MianshenRun
from kechuang.errors import KechuangError


class Command(BaseCommand):
    help = "免申即享 runs: run, status, resume, restart, export"

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="start a run")
        run.add_argument("--policies", required=True, help="comma-separated policy ids")
        run.add_argument("--as-of", required=True, help="YYYY-MM-DD")
        run.add_argument("--street", default="")
        run.add_argument("--industry-code", default="")
        run.add_argument("--certification", default="")
        run.add_argument("--wait", action="store_true", help="print progress until it finishes")
        run.add_argument("--inline", action="store_true", help="run in this process, no worker")
        for name in ("status", "resume", "restart"):
            p = sub.add_parser(name)
            p.add_argument("run_id", type=int)
            if name != "status":
                p.add_argument("--wait", action="store_true")
        exp = sub.add_parser("export", help="write a run to Excel")
        exp.add_argument("run_id", type=int)
        exp.add_argument("out")

    def handle(self, *args, action: str, **options) -> None:
        try:
            getattr(self, f"handle_{action}")(**options)
        except KechuangError as e:
            raise CommandError(e.message) from None

    def handle_run(self, *, policies: str, as_of: str, wait: bool, inline: bool, **options) -> None:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            raise CommandError(f"--as-of: not a date (YYYY-MM-DD): {as_of!r}") from None
        scope = {k: options.get(k) for k in services_runs.SCOPE_KEYS}
        if inline:
            # Queue nothing: create the run outside any worker's reach and execute it here.
            from django.test.utils import override_settings

            with override_settings(
                TASKS={"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
            ):
                run = services_runs.mianshen_run_start(
                    policies=policies.split(","), as_of=day, scope=scope, actor=None
                )
            self.stdout.write(f"run #{run.pk} running in this process")
            run = services_runs.mianshen_run_execute(run_id=run.pk)
            self.report(run)
            return
        run = services_runs.mianshen_run_start(
            policies=policies.split(","), as_of=day, scope=scope, actor=None
        )
        self.stdout.write(f"run #{run.pk} queued (worker: kechuang db_worker)")
        if wait:
            self.wait(run.pk)

    def handle_status(self, *, run_id: int, **options) -> None:
        services_runs.mianshen_runs_mark_interrupted()
        self.report(self.get(run_id))

    def handle_resume(self, *, run_id: int, wait: bool = False, **options) -> None:
        services_runs.mianshen_run_resume(run=self.get(run_id), actor=None)
        self.stdout.write(f"run #{run_id} queued again")
        if wait:
            self.wait(run_id)

    def handle_restart(self, *, run_id: int, wait: bool = False, **options) -> None:
        services_runs.mianshen_run_restart(run=self.get(run_id), actor=None)
        self.stdout.write(f"run #{run_id} queued from the start")
        if wait:
            self.wait(run_id)

    def handle_export(self, *, run_id: int, out: str, **options) -> None:
        Path(out).write_bytes(selectors_runs.run_export_xlsx(self.get(run_id)))
        self.stdout.write(f"wrote {out}")

    # ------------------------------------------------------------------ helpers
    def get(self, run_id: int) -> MianshenRun:
        run = MianshenRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"no run #{run_id}")
        return run

    def wait(self, run_id: int) -> None:
        last = None
        while True:
            services_runs.mianshen_runs_mark_interrupted()
            run = self.get(run_id)
            p = selectors_runs.run_progress(run)
            line = f"{p['status']} {p['done']}/{p['total']} {p['step']}"
            if line != last:
                self.stdout.write(line)
                last = line
            if p["finished"]:
                break
            time.sleep(0.5)
        self.report(run)
        if run.status in (MianshenRun.Status.FAILED, MianshenRun.Status.INTERRUPTED):
            raise CommandError(f"run #{run.pk} {run.status}: {run.error}")

    def report(self, run: MianshenRun) -> None:
        self.stdout.write(
            f"run #{run.pk} {run.status} as of {run.as_of} · {run.facts_count} enterprises · "
            f"facts sha256 {run.facts_hash[:16]} · {run.duration_ms or '-'} ms"
        )
        for s in selectors_runs.run_summary(run):
            counts = " ".join(f"{v}={n}" for v, n in s["counts"])
            self.stdout.write(f"  {s['policy_id']}: {counts} payable={s['payable']} ({s['paid']} paid)")
