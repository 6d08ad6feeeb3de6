"""What-if reforms (改革试算): run a policy with changed parameters against the registry
and compare with the law in force.

A reform is a parameter override handed to the compiler and the evaluator
(:func:`kechuang.calculator.runs.policy_with_overrides` builds an in-memory copy of the
policy); the law in force is never changed by a reform. An admin may then publish
some of its values as new dated parameter values, citing their legal basis
(:mod:`kechuang.calculator.services_law`); from their effective date on they are the
law in force (:func:`kechuang.calculator.law.policy_in_force`).
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

from django.db import transaction

from kechuang.accounts.models import User
from kechuang.accounts.services import audit_record
from kechuang.calculator import law, runs
from kechuang.calculator.models_runs import MianshenResult, MianshenRun, Reform
from kechuang.calculator.services_runs import mianshen_run_start
from kechuang.errors import KechuangError, checked_text
from kechuang.rules import Decision, NotInForce
from kechuang.rules.explain.evaluate import evaluate_row
from kechuang.rules.facts import MAGNITUDE_DIGITS


def reform_parameters(policy_id: str, as_of: dt.date) -> list[dict[str, Any]]:
    """The policy's parameters with the values in force on ``as_of`` (the form's start),
    published values included."""
    policy = law.policy_in_force(policy_id)
    out = []
    for name, param in policy.parameters.items():
        entry = param.at(as_of)
        out.append(
            {
                "name": name,
                "title": param.title.zh,
                "unit": param.unit,
                "value": runs.decimal_text(entry.value) if entry else None,
                "article": entry.article if entry else "",
                "since": entry.since if entry else None,
                "per_row": param.select_by is not None,
            }
        )
    return out


def reform_create(
    *,
    policy_id: str,
    name: str,
    overrides: dict[str, str],
    actor: User | None,
    as_of: dt.date | None = None,
    note: str = "",
) -> Reform:
    """A reform of one policy; only the parameters that differ are kept as overrides."""
    runs.check_policies([policy_id])
    name = (name or "").strip()
    if not name:
        raise KechuangError("请填写名称 / name required", field="name")
    checked_text(Reform, "name", name)
    checked_text(Reform, "note", note or "")
    as_of = as_of or dt.date.today()
    current = {p["name"]: p["value"] for p in reform_parameters(policy_id, as_of)}
    changed = {}
    for key, text in overrides.items():
        text = (text or "").strip()
        if text == "" or key not in current:
            if key not in current:
                raise KechuangError(f"政策 {policy_id} 没有参数 {key}", field=key)
            continue
        value = runs.decimal_text(runs.Decimal(text)) if _is_number(text) else None
        if value is None:
            raise KechuangError(f"参数 {key} 的值不是数字 / not a number: {text!r}", field=key)
        if value != current[key]:
            changed[key] = value
    if not changed:
        raise KechuangError("没有修改任何参数 / no parameter changed", field="overrides")
    # Fails now, not in the worker, if a value cannot apply.
    runs.policy_with_overrides(law.policy_in_force(policy_id), changed, as_of)
    with transaction.atomic():
        reform = Reform.objects.create(
            name=name, policy_id=policy_id, overrides=changed, note=note, created_by=actor
        )
        audit_record(actor=actor, action="reform_create", obj_type="reform", obj_id=reform.pk,
                     before=None, after={"policy": policy_id, "overrides": changed})
    return reform


def _is_number(text: str) -> bool:
    try:
        value = Decimal(text)
    except Exception:
        return False
    # 1e999999999 is a number no parameter holds; writing it out would not end.
    return value.is_finite() and (not value or abs(value.adjusted()) <= MAGNITUDE_DIGITS)


def reform_run(
    *, reform: Reform, as_of: dt.date, actor: User | None, scope: dict | None = None
) -> MianshenRun:
    """Run the law in force and the reform over the same registry, as of the same date."""
    baseline = mianshen_run_start(
        policies=[reform.policy_id], as_of=as_of, scope=scope, actor=actor, is_baseline=True
    )
    return mianshen_run_start(
        policies=[reform.policy_id], as_of=as_of, scope=scope, actor=actor, reform=reform,
        baseline=baseline,
    )


def reform_comparison(run: MianshenRun) -> dict[str, Any] | None:
    """Side by side: eligible counts, gainers and losers, budget before and after."""
    base = run.baseline
    if base is None or run.status != MianshenRun.Status.DONE or base.status not in (
        MianshenRun.Status.DONE, MianshenRun.Status.CONFIRMED
    ):
        return None
    pid = run.reform.policy_id

    def by_code(r: MianshenRun) -> dict[str, MianshenResult]:
        return {x.credit_code: x for x in r.results.filter(policy_id=pid).select_related("enterprise")}

    before, after = by_code(base), by_code(run)

    def amount(x: MianshenResult | None) -> Decimal:
        return x.benefit if x is not None and x.verdict == "eligible" and x.benefit else Decimal("0")

    gainers, losers = [], []
    for code in sorted(set(before) | set(after)):
        b, a = before.get(code), after.get(code)
        bv, av = b.verdict if b else None, a.verdict if a else None
        delta = amount(a) - amount(b)
        row = {"code": code, "name": (a or b).enterprise.name, "before": bv, "after": av,
               "amount_before": amount(b), "amount_after": amount(a), "delta": delta}
        if (av == "eligible" and bv != "eligible") or delta > 0:
            gainers.append(row)
        elif (bv == "eligible" and av != "eligible") or delta < 0:
            losers.append(row)
    counts = {
        v: (sum(1 for x in before.values() if x.verdict == v), sum(1 for x in after.values() if x.verdict == v))
        for v in ("eligible", "needs_review", "needs_data", "ineligible")
    }
    budget_before = sum((amount(x) for x in before.values()), Decimal("0"))
    budget_after = sum((amount(x) for x in after.values()), Decimal("0"))
    return {
        "baseline": base,
        "counts": counts,
        "gainers": gainers,
        "losers": losers,
        "budget_before": budget_before,
        "budget_after": budget_after,
        "budget_delta": budget_after - budget_before,
        "has_benefit": bool(run.benefit_outputs.get(pid)),
    }


def reform_chart_png(comparison: dict[str, Any], title: str) -> bytes:
    """Bars: enterprises per verdict before and after, and the budget before and after."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    verdicts = list(comparison["counts"])
    before = [comparison["counts"][v][0] for v in verdicts]
    after = [comparison["counts"][v][1] for v in verdicts]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [3, 1.2]})
    xs = range(len(verdicts))
    ax1.bar([x - 0.2 for x in xs], before, width=0.4, label="in force", color="#8c959f")
    ax1.bar([x + 0.2 for x in xs], after, width=0.4, label="reform", color="#0969da")
    ax1.set_xticks(list(xs), verdicts)
    ax1.set_ylabel("enterprises")
    ax1.legend()
    ax1.set_title(title)
    budget = [float(comparison["budget_before"]) / 1e4, float(comparison["budget_after"]) / 1e4]
    ax2.bar(["in force", "reform"], budget, color=["#8c959f", "#0969da"])
    ax2.set_ylabel("budget (10k yuan)")  # display only: the exact sums are on the page
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def explain_result(run: MianshenRun, result: MianshenResult) -> Decision | None:
    """The full in-process explanation of one result, as of the run date, from the
    facts row the run stored (what its SQL read), not the registry as it is now; with
    the run's reform applied. None for a run stored before runs kept their facts."""
    row = runs.stored_facts_row(run.pk, result.credit_code)
    if row is None:
        return None
    try:
        if run.reform_id and run.reform.policy_id == result.policy_id:
            policy = runs.resolve_policy(result.policy_id, run.reform.overrides, run.as_of)
            policy = runs.policy_as_recorded(run, result.policy_id, policy)
            return Decision(evaluate_row(policy, row, run.as_of))
        return law.evaluate_flat(runs.policy_as_recorded(run, result.policy_id), row, run.as_of)
    except NotInForce as exc:
        # A run stored before such dates were refused at its start: it cannot be explained.
        raise KechuangError(str(exc), field="as_of") from None
