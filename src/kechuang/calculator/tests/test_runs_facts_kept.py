"""A run keeps the facts rows it read: a result's explanation is re-evaluated from
them (``kechuang.rules.evaluate_flat``), not from the registry as it is later."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.utils.html import escape
from openpyxl import load_workbook

from kechuang.calculator import runs
from kechuang.calculator.models_runs import MianshenRun
from kechuang.calculator.services_runs import mianshen_run_start
from kechuang.registry.models import Certification, FiscalYear
from kechuang.registry.selectors import enterprise_facts_rows
from kechuang.rules import evaluate_flat, get_policy

AS_OF = dt.date(2025, 6, 30)
POLICIES = ["hte", "district_hte_first_reward"]


@pytest.mark.django_db
def test_result_page_explains_the_facts_the_run_read_after_the_registry_changed(
    client, alice_corp, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    Certification.objects.create(
        enterprise=alice_corp,
        kind="hte",
        number="GR202431000001",
        valid_from=dt.date(2024, 11, 1),
        valid_to=dt.date(2027, 10, 31),
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = mianshen_run_start(policies=POLICIES, as_of=AS_OF, actor=staff_zhang)
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.DONE, run.error
    read = enterprise_facts_rows(as_of=AS_OF, enterprise_ids=[alice_corp.pk])[0]

    # Stored exactly: decimals as strings, dates as yyyymmdd integers.
    stored = runs.stored_facts_row(run.pk, alice_corp.credit_code)
    assert stored == read
    as_json = json.loads(json.dumps(runs.facts_json(stored)))
    assert as_json["hte_first_certificate_issue_date"] == 20241101
    assert as_json["fy1_sales_revenue"] == "52900000.00"

    # Later the registry changes: other figures, an older first certificate.
    FiscalYear.objects.filter(enterprise=alice_corp, year=2024).update(
        sales_revenue=Decimal("1234567.89"), rd_expense=Decimal("7.00")
    )
    Certification.objects.filter(enterprise=alice_corp).update(valid_from=dt.date(2019, 11, 1))
    now = enterprise_facts_rows(as_of=AS_OF, enterprise_ids=[alice_corp.pk])[0]
    assert now != read

    client.force_login(staff_zhang)
    for result in run.results.filter(enterprise=alice_corp):
        again = evaluate_flat(
            result.policy_id, runs.stored_facts_row(run.pk, alice_corp.credit_code), AS_OF
        )
        assert again.verdict == result.verdict, result.policy_id
        page = client.get(f"/calculator/runs/{run.pk}/results/{result.pk}/").content.decode()
        assert escape(again.explain()) in page, result.policy_id
        assert "1234567.89" not in page and "1,234,567.89" not in page
    reward = run.results.get(enterprise=alice_corp, policy_id="district_hte_first_reward")
    assert reward.verdict == "eligible"
    assert evaluate_flat(reward.policy_id, now, AS_OF).verdict == "ineligible", "the change matters"
    page = client.get(f"/calculator/runs/{run.pk}/results/{reward.pk}/").content.decode()
    assert "20241101" in page or "2024-11-01" in page
    hte = run.results.get(enterprise=alice_corp, policy_id="hte")
    page = client.get(f"/calculator/runs/{run.pk}/results/{hte.pk}/").content.decode()
    assert "52900000" in page.replace(",", ""), "the revenue the run read"

    # The export carries the same rows.
    wb = load_workbook(io.BytesIO(client.get(f"/calculator/runs/{run.pk}/export.xlsx").content))
    rows = {r[0]: json.loads(r[1]) for r in wb["事实 facts"].iter_rows(min_row=2, values_only=True)}
    assert rows[alice_corp.credit_code] == as_json

    # The facts table lives as long as the run.
    assert runs.facts_kept(run.pk)
    run_id = run.pk
    run.results.all().delete()
    run.delete()
    assert not runs.facts_kept(run_id)


@pytest.mark.django_db
def test_a_results_outputs_are_recomputed_from_the_kept_facts_and_checked(
    client, alice_corp, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    from django.db import connection

    from kechuang.calculator import selectors_runs
    from kechuang.errors import KechuangError

    Certification.objects.create(
        enterprise=alice_corp, kind="hte", number="GR202431000001",
        valid_from=dt.date(2024, 11, 1), valid_to=dt.date(2027, 10, 31),
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = mianshen_run_start(policies=POLICIES, as_of=AS_OF, actor=staff_zhang)
    run.refresh_from_db()
    reward = run.results.get(enterprise=alice_corp, policy_id="district_hte_first_reward")
    assert reward.outputs == {}, "only what lists, review and the diff read is stored"
    outputs = selectors_runs.result_outputs(run, reward)
    expected = evaluate_flat(reward.policy_id, runs.stored_facts_row(run.pk, reward.credit_code), AS_OF)
    assert outputs["verdict"] == reward.verdict == expected.verdict == "eligible"
    assert selectors_runs.run_facts_verified(run) is True
    assert Decimal(str(outputs[run.benefit_outputs[reward.policy_id][0]])) == reward.benefit

    # A policy file changed since the run: its rules would explain another decision.
    assert run.policy_files[reward.policy_id] == get_policy(reward.policy_id).sha256
    recorded = dict(run.policy_files)
    run.policy_files = {**recorded, reward.policy_id: "0" * 64}
    run.save(update_fields=["policy_files"])
    run = MianshenRun.objects.get(pk=run.pk)
    with pytest.raises(KechuangError, match="changed since run"):
        selectors_runs.result_outputs(run, reward)
    run.policy_files = recorded
    run.save(update_fields=["policy_files"])
    run = MianshenRun.objects.get(pk=run.pk)

    # Facts that no longer give the stored decision are refused, not explained.
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {runs.facts_table(run.pk)} SET hte_first_certificate_issue_date = 20191101 "
            "WHERE entity_id = %s",
            [alice_corp.credit_code],
        )
    with pytest.raises(KechuangError, match="does not reproduce"):
        selectors_runs.result_outputs(run, reward)
    # The page and the API say so too, and show no explanation.
    client.force_login(staff_zhang)
    page = client.get(f"/calculator/runs/{run.pk}/results/{reward.pk}/")
    assert page.status_code == 409
    assert "does not reproduce" in page.content.decode() and "逐条解释" not in page.content.decode()
    from kechuang.accounts.tokens import token_create

    _, token = token_create(user=staff_zhang)
    api = client.get(
        f"/api/mianshen/runs/{run.pk}/results/{reward.pk}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert api.status_code == 400 and "does not reproduce" in api.content.decode()
    assert selectors_runs.run_facts_verified(run) is False, "the kept rows no longer hash alike"
    info = load_workbook(io.BytesIO(selectors_runs.run_export_xlsx(run)))["运行信息 run"]
    labels = [r[0] for r in info.iter_rows(values_only=True)]
    assert f"政策文件 {reward.policy_id} sha256 (policy file)" in labels
    assert ["事实复核 facts kept match the hash", "否 NO"] in [
        list(r)[:2] for r in info.iter_rows(values_only=True)
    ]


@pytest.mark.django_db
def test_outputs_stored_by_an_earlier_run_are_still_read(
    alice_corp, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    from kechuang.calculator import selectors_runs

    with django_capture_on_commit_callbacks(execute=True):
        run = mianshen_run_start(policies=POLICIES, as_of=AS_OF, actor=staff_zhang)
    run.refresh_from_db()
    result = run.results.get(enterprise=alice_corp, policy_id="hte")
    columns = [c for c, _, _ in run.columns["hte"]]
    # As runs wrote them before: on PostgreSQL an array in column-map order.
    result.outputs = [None] * len(columns)
    result.outputs[columns.index("verdict")] = "ineligible"
    result.save()
    assert selectors_runs.result_outputs(run, result)["verdict"] == "ineligible"
