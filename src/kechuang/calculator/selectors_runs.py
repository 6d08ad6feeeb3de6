"""Everything that reads 免申即享 runs, offers, notices and reforms for pages, the API,
exports and the CLI."""

from __future__ import annotations

import io
import json
from collections import Counter
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Subquery, Sum

from kechuang import spreadsheets
from kechuang.calculator import runs
from kechuang.calculator.models_runs import (
    MianshenOffer,
    MianshenResult,
    MianshenRun,
    Notification,
    Reform,
)
from kechuang.rules import get_policy, policy_ids

VERDICTS = ("eligible", "needs_review", "needs_data", "ineligible")


def run_list(*, reforms: bool = False) -> QuerySet[MianshenRun]:
    qs = MianshenRun.objects.select_related("created_by", "reform")
    return qs.filter(reform__isnull=not reforms)


def run_progress(run: MianshenRun) -> dict[str, Any]:
    total = max(run.steps_total, 1)
    return {
        "status": run.status,
        "status_label": run.get_status_display(),
        "step": run.step,
        "done": run.steps_done,
        "total": run.steps_total,
        "percent": min(100, round(100 * run.steps_done / total)),
        "finished": run.status
        in (MianshenRun.Status.DONE, MianshenRun.Status.CONFIRMED, MianshenRun.Status.FAILED,
            MianshenRun.Status.INTERRUPTED),
        "error": run.error,
    }


def run_summary(run: MianshenRun) -> list[dict[str, Any]]:
    """Per policy: counts by verdict, excluded, stacked, and the amount payable."""
    rows = (
        run.results.values("policy_id", "verdict")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[str, Counter] = {}
    for r in rows:
        counts.setdefault(r["policy_id"], Counter())[r["verdict"]] = r["n"]
    money = {
        r["policy_id"]: r
        for r in run.results.values("policy_id").annotate(
            n_payable=Sum("payable", filter=Q(excluded=False)),
            n_excluded=Count("id", filter=Q(excluded=True)),
            n_stacked=Count("id", filter=~Q(stacking_note="")),
            n_paid=Count("id", filter=Q(excluded=False, payable__gt=0)),
        ).order_by()
    }
    out = []
    for pid in run.policies:
        c = counts.get(pid, Counter())
        m = money.get(pid, {})
        out.append(
            {
                "policy_id": pid,
                "title": get_policy(pid).title.zh,
                "counts": [(v, c.get(v, 0)) for v in VERDICTS],
                "total": sum(c.values()),
                "payable": m.get("n_payable") or Decimal("0"),
                "paid": m.get("n_paid") or 0,
                "excluded": m.get("n_excluded") or 0,
                "stacked": m.get("n_stacked") or 0,
                "has_benefit": bool(run.benefit_outputs.get(pid)),
            }
        )
    return out


def run_previous(run: MianshenRun) -> MianshenRun | None:
    """The last finished run before this one of the same policies, scope and reform."""
    candidates = MianshenRun.objects.filter(
        created_at__lte=run.created_at,
        status__in=(MianshenRun.Status.DONE, MianshenRun.Status.CONFIRMED),
        reform=run.reform,
    ).exclude(pk=run.pk).order_by("-created_at", "-id")
    for other in candidates[:50]:
        if sorted(other.policies) == sorted(run.policies) and other.scope == run.scope and other.pk < run.pk:
            return other
    return None


def _eligible(run: MianshenRun) -> dict[tuple[str, str], MianshenResult]:
    return {
        (r.credit_code, r.policy_id): r
        for r in run.results.filter(verdict="eligible").select_related("enterprise")
    }


def run_changes(run: MianshenRun, previous: MianshenRun | None) -> dict[str, list]:
    """Enterprises newly qualifying and no longer qualifying since ``previous``."""
    if previous is None:
        return {"new": [], "gone": []}
    now, before = _eligible(run), _eligible(previous)
    new = [now[k] for k in sorted(set(now) - set(before))]
    gone = [before[k] for k in sorted(set(before) - set(now))]
    return {"new": new, "gone": gone}


def run_results(
    run: MianshenRun, *, policy: str = "", verdict: str = "", search: str = "", only_paid: bool = False
) -> QuerySet[MianshenResult]:
    qs = run.results.select_related("enterprise")
    if policy:
        qs = qs.filter(policy_id=policy)
    if verdict:
        qs = qs.filter(verdict=verdict)
    if only_paid:
        qs = qs.filter(payable__gt=0, excluded=False)
    if search:
        qs = qs.filter(Q(credit_code__icontains=search.upper()) | Q(enterprise__name__icontains=search))
    return qs.order_by("credit_code", "policy_id")


def result_outputs(
    run: MianshenRun, result: MianshenResult, decision: Any = runs.EXPLAIN
) -> dict[str, Any]:
    """A result's outputs: computed again from what the run recorded (its kept facts
    row and parameter values), checked against the stored verdict, benefit and missing
    facts. Runs stored before outputs were recomputed keep theirs in the row.
    ``decision``: the result's explanation when the caller has it already."""
    if result.outputs:
        return runs.decode_outputs(run.columns.get(result.policy_id, []), result.outputs)
    outputs = runs.recomputed_outputs(run, result, decision)
    if outputs is None:  # a run that kept no facts: what its row holds
        outputs = {"verdict": result.verdict,
                   "missing_fields": [f for f in result.missing_fields.split(",") if f]}
    return outputs


def output_rows(outputs: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A decision's nested outputs as (dotted path, value) rows, in their order."""
    rows: list[tuple[str, Any]] = []
    for key, value in outputs.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += output_rows(value, path + ".")
        else:
            rows.append((path, value))
    return rows


def facts_rows(row: dict[str, Any], as_of: Any) -> list[tuple[str, str, Any, str]]:
    """The known values of a stored facts row as (column, the field it stands for as of
    the run date, value, type): dates as dates, for the page to show as people read them."""
    from kechuang.rules.facts import COLUMNS_BY_NAME, int_date

    out = []
    for name, value in row.items():
        column = COLUMNS_BY_NAME.get(name)
        if value is None or column is None:
            continue
        if column.type == "date" and isinstance(value, int):
            try:
                value = int_date(value).isoformat()
            except ValueError:
                value = str(value)  # the row's own invalid date, shown as stored
        out.append((name, column.nested_path(as_of), value, column.type))
    return out


def offers_for_enterprise(enterprise_id: int) -> QuerySet[MianshenOffer]:
    return MianshenOffer.objects.filter(enterprise_id=enterprise_id).select_related("run", "benefit")


def notifications_for(user: Any) -> QuerySet[Notification]:
    return Notification.objects.filter(user=user)


def needs_data_for_enterprise(enterprise_id: int) -> list[MianshenResult]:
    """What one enterprise still has to supply: for each policy, its result in the latest
    confirmed run that decided it, when that result is needs_data.

    Per policy, not the latest run alone: a later run of other policies, or of another
    street, says nothing about what this enterprise lacks for the earlier ones."""
    from kechuang.registry.models import Enterprise

    # By credit code: the results are indexed by run and credit code, not by enterprise.
    code = Enterprise.objects.filter(pk=enterprise_id).values("credit_code")[:1]
    latest: dict[str, MianshenResult] = {}
    for r in (
        MianshenResult.objects.filter(
            credit_code=Subquery(code),
            run__status=MianshenRun.Status.CONFIRMED,
            run__reform__isnull=True,
        )
        .select_related("run")
        .order_by("-run__created_at", "-run_id")
    ):
        latest.setdefault(r.policy_id, r)
    # A policy whose file is gone can ask for nothing any more (nor name its facts).
    known = set(policy_ids())
    results = [
        r for pid, r in sorted(latest.items()) if r.verdict == "needs_data" and pid in known
    ]
    for r in results:
        r.missing_labels = runs.missing_labels(r.policy_id, r.run.as_of, r.missing_fields)
    return results


# --------------------------------------------------------------------------- export


def run_facts_verified(run: MianshenRun) -> bool | None:
    """Whether the facts rows the run kept still hash to the hash it recorded when it
    read them: then every result's outputs and explanation, computed again from those
    rows and the recorded parameter values, are the run's own. None: no facts kept."""
    if not run.facts_hash or not runs.facts_kept(run.pk):
        return None
    return runs.facts_hash(run.pk) == run.facts_hash


def run_export_xlsx(run: MianshenRun) -> bytes:
    """The run as an Excel workbook: what it read, a summary, and every result."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    info = wb.create_sheet("运行信息 run")
    spreadsheets.append(info, ["运行 run", run.pk])
    spreadsheets.append(info, ["基准日 as-of", run.as_of.isoformat()])
    spreadsheets.append(info, ["状态 status", run.status])
    spreadsheets.append(info, ["范围 scope", ", ".join(f"{k}={v}" for k, v in run.scope.items()) or "全部 whole registry"])
    spreadsheets.append(info, ["改革 reform", f"{run.reform.name}: {run.reform.overrides}" if run.reform_id else ""])
    spreadsheets.append(info, ["企业数 enterprises", run.facts_count])
    spreadsheets.append(info, ["事实哈希 facts sha256", run.facts_hash])
    spreadsheets.append(info, ["事实复核 facts kept match the hash", {True: "是 yes", False: "否 NO", None: ""}[
        run_facts_verified(run)]])
    for pid, sha in run.policy_hashes.items():
        spreadsheets.append(info, [f"适用法规 {pid} sha256 (file and published values)", sha])
    for pid, sha in (run.policy_files or {}).items():
        spreadsheets.append(info, [f"政策文件 {pid} sha256 (policy file)", sha])
    for pid, params in run.parameters.items():
        for name, entries in params.items():
            for e in entries:
                spreadsheets.append(info, [f"参数 {pid}.{name}", e["value"], e["since"], e["until"] or "", e["article"]])
    summary = wb.create_sheet("汇总 summary")
    spreadsheets.append(summary, ["政策 policy", *VERDICTS, "拟兑现 payable", "兑现家数 paid", "排除 excluded", "叠加限制 stacked"])
    for s in run_summary(run):
        spreadsheets.append(summary,
            [s["policy_id"], *(n for _, n in s["counts"]), s["payable"], s["paid"], s["excluded"], s["stacked"]]
        )
    sheet = wb.create_sheet("结果 results")
    spreadsheets.append(sheet,
        ["统一社会信用代码", "企业名称", "政策 policy", "结论 verdict", "测算金额 benefit",
         "拟兑现 payable", "叠加说明 stacking", "缺少数据 missing", "排除 excluded", "排除理由 reason"]
    )
    qs = run.results.select_related("enterprise").order_by("credit_code", "policy_id")
    for r in qs.iterator(chunk_size=5000):
        spreadsheets.append(sheet,
            [r.credit_code, r.enterprise.name, r.policy_id, r.verdict, r.benefit, r.payable,
             r.stacking_note, r.missing_fields.rstrip(","), "是" if r.excluded else "", r.exclusion_reason]
        )
    # What each result was decided on: the facts row the run read and kept (JSON,
    # decimals as strings, dates yyyymmdd). ``kechuang.rules.evaluate_flat(policy, row,
    # as_of)`` on it reproduces the verdict and explains it, whatever the registry says now.
    facts = wb.create_sheet("事实 facts")
    spreadsheets.append(facts, ["统一社会信用代码", "比对读取的事实 facts row read by the run (JSON)"])
    for row in runs.iter_stored_facts(run.pk):
        spreadsheets.append(facts, [row["entity_id"], json.dumps(runs.facts_json(row), ensure_ascii=False)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def reform_list() -> QuerySet[Reform]:
    return Reform.objects.select_related("created_by")
