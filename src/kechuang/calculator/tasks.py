"""Background tasks of the calculator (django-tasks; the database backend in production).

``kechuang db_worker`` runs them. A run's state lives in ``MianshenRun``, not in the
task: a worker that dies leaves the run ``running`` with a stale heartbeat, which the
pages show as interrupted and staff can resume or restart.
"""

from __future__ import annotations

from django_tasks import task


@task()
def mianshen_run_task(run_id: int) -> None:
    from kechuang.calculator.services_runs import mianshen_run_execute

    mianshen_run_execute(run_id=run_id)
