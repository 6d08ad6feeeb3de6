"""Readable explanations of a decision, in Chinese and English.

Every number is shown exactly as the engine decided on it (never through a float): a
money amount one fen over a bound must not read as equal to it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from kechuang.rules.facts import MALFORMED
from kechuang.rules.numbers import decimal_places
from kechuang.rules.policy import BUILTINS

if TYPE_CHECKING:
    from kechuang.rules.explain.evaluate import Evaluation, ParameterUse
    from kechuang.rules.policy import Policy, Text

VERDICT_TEXT = {
    "eligible": ("符合", "eligible"),
    "ineligible": ("不符合", "ineligible"),
    "needs_review": ("需专家评审", "needs expert review"),
    "needs_data": ("需补充数据", "needs data"),
}
#: How a criterion's outcome reads, by its role: (mark, zh, en) per outcome.
ROLE_TEXT = {
    "requirement": {
        True: ("✓", "满足", "met"),
        False: ("✗", "不满足", "not met"),
        None: ("?", "未知", "unknown"),
    },
    "exclusion": {
        True: ("✗", "属于（排除）", "applies (excluded)"),
        False: ("✓", "不属于", "does not apply"),
        None: ("?", "未知", "unknown"),
    },
    "classification": {
        True: ("·", "是", "yes"),
        False: ("·", "否", "no"),
        None: ("?", "未知", "unknown"),
    },
}
NOT_APPLICABLE = ("—", "不适用", "not applicable")


def criterion_text(role: str, outcome: bool | None, applies: bool = True) -> tuple[str, str, str]:
    """(mark, zh, en) of a criterion's outcome as it reads for its role."""
    return ROLE_TEXT[role][outcome] if applies else NOT_APPLICABLE


#: Units (input types, parameter units) shown as a percentage too, or to the fen. Outputs
#: typed "ratio" are not all shares (an average count, a growth rate): shown as computed.
_RATIO_UNITS = {"ratio", "share"}
_MONEY_UNITS = {"money", "yuan"}


def _decimal(value: Any) -> Fraction | None:
    if isinstance(value, bool | str) or value is None:
        return None
    if isinstance(value, float):  # an output: its repr is its exact decimal (ExactFloat too)
        return Fraction(Decimal(repr(value)))
    try:
        return Fraction(value)
    except (TypeError, ValueError):
        return None


def _number(f: Fraction, min_places: int = 0) -> str:
    """Exactly, with thousands separators: every decimal of a finite expansion (at least
    ``min_places``); a repeating one to 6 places, marked as rounded."""
    places = decimal_places(f)
    if places is None:
        return "≈" + f"{Decimal(f.numerator) / Decimal(f.denominator):,.6f}"
    places = max(places, min_places)
    exact = Decimal(f"{f.numerator * 10**places // f.denominator}e-{places}")
    return f"{exact:,.{places}f}"


def _fmt(value: Any, unit: str | None, zh: bool) -> str:
    """One value as people read it; ``unit`` is an input type, a parameter unit or an
    output type."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return ("是" if value else "否") if zh else ("yes" if value else "no")
    if isinstance(value, list):
        return ", ".join(_fmt(v, unit, zh) for v in value) or ("（无）" if zh else "(none)")
    f = _decimal(value)
    if unit == "date" and f is not None and f.denominator == 1:
        # Dates are yyyymmdd numbers inside the engine; a derived one is a Fraction.
        try:
            return dt.datetime.strptime(str(f.numerator), "%Y%m%d").date().isoformat()
        except ValueError:
            return str(f.numerator)
    if f is None:
        return str(value)
    if unit == "year" and f.denominator == 1:
        return str(f.numerator)  # 2022, not 2,022
    text = _number(f, 2 if unit in _MONEY_UNITS else 0)
    if unit in _RATIO_UNITS:
        text += f"（{_number(f * 100)}%）" if zh else f" ({_number(f * 100)}%)"
    return text


def _title_of(policy: Policy, name: str | None) -> Text | None:
    """The words the policy file gives for a name: an input's description, a derived
    value's label, a parameter's, criterion's or score's title."""
    if name in policy.inputs:
        return policy.inputs[name].description
    if name in policy.labels:
        return policy.labels[name]
    for table in (policy.parameters, policy.criteria, policy.scores):
        if name in table:
            return table[name].title
    return None


def _labelled(text: Text | None, name: str, zh: bool) -> str:
    return f"{text.zh if zh else text.en} ({name})" if text else name


def _name_label(policy: Policy, name: str, zh: bool) -> str:
    """``label (name)`` where the policy describes the name, else the name."""
    return _labelled(_title_of(policy, name), name, zh)


def _unit_of(policy: Policy, name: str) -> str | None:
    if name.endswith("_year"):
        return "year"
    if name in policy.inputs:
        return policy.inputs[name].type
    if name in BUILTINS:
        return BUILTINS[name]
    if name.endswith("_date"):
        # A derived date (a window's first day) is a yyyymmdd number like the inputs.
        return "date"
    if name in policy.labels:
        from kechuang.rules.explain.counterfactual import sum_unit

        return sum_unit(policy.definitions()[name].tree, policy)
    return None


def _value_line(ev: Evaluation, name: str, value: Any, zh: bool) -> str:
    policy = ev.policy
    shown = _fmt(value, _unit_of(policy, name), zh)
    raw = ev.row.get(name) if name in policy.inputs else None
    invalid = "（无效）" if zh else " (invalid)"
    if value is None and raw is not None:
        # Given but invalid: treated as unknown, yet the reader should see what was given.
        shown = _fmt(raw, _unit_of(policy, name), zh) + invalid
    elif value is None and name in ev.row.get(MALFORMED, ()):
        shown += invalid  # a value of the wrong type (a text for an amount): nothing to show
    return f"    {_name_label(policy, name, zh)} = {shown}"


def _parameter_line(policy: Policy, use: ParameterUse, zh: bool) -> str:
    param = policy.parameters.get(use.name)
    unit = param.unit if param else None
    label = _name_label(policy, use.name, zh)
    if use.value is None:
        return f"    {label} = —" + ("（该日无生效值）" if zh else " (no value in force on that day)")
    since = use.start.isoformat() if use.start and use.start != dt.date.min else None
    until = use.end.isoformat() if use.end else None
    if zh:
        period = (f"自 {since} 起" if since else "") + (f"至 {until}" if until else "")
    else:
        period = (f"since {since}" if since else "") + (f" until {until}" if until else "")
    notes = "; ".join(part for part in (period.strip(), use.article) if part)
    note = (f"（{notes}）" if zh else f" ({notes})") if notes else ""
    return f"    {label} = {_fmt(use.value, unit, zh)}{note}"


def _output_label(
    policy: Policy, path: tuple[str, ...], title: Text | None, reads: str | None, zh: bool
) -> str:
    """``title (path)``: the output's own title, else that of the criterion, score, derived
    value or input it is named after or just reads (``reads``); the bare RULES.md path
    where there is none."""
    title = title or _title_of(policy, path[-1]) or _title_of(policy, reads)
    return _labelled(title, ".".join(path), zh)


def _output_lines(ev: Evaluation, zh: bool) -> list[str]:
    types = {out.path: out.type for out in ev.policy.outputs}
    titles = {out.path: out.title for out in ev.policy.outputs}
    # An output that is just a name (`tech_field_supported: tech_field_condition`).
    reads = {
        out.path: out.exprs[0].text.strip()
        for out in ev.policy.outputs
        if out.kind == "value" and out.exprs[0].text.strip().isidentifier()
    }
    lines: list[str] = []

    def walk(node: dict, prefix: tuple[str, ...]) -> None:
        for key, value in node.items():
            path = (*prefix, key)
            if path in (("verdict",), ("missing_fields",), ("invalid_fields",)):
                continue
            if isinstance(value, dict):
                walk(value, path)
                continue
            unit = types.get(path)
            unit = None if unit in _RATIO_UNITS else unit
            if isinstance(value, list) and len(value) == 2 and unit not in ("list", "text"):
                shown = f"[{_fmt(value[0], unit, zh)}, {_fmt(value[1], unit, zh)}]"
            else:
                shown = _fmt(value, unit, zh)
            label = _output_label(ev.policy, path, titles.get(path), reads.get(path), zh)
            lines.append(f"    {label}: {shown}")

    walk(ev.outputs, ())
    return lines


def render_text(ev: Evaluation, lang: str = "zh") -> str:
    """A plain-text explanation: the verdict, every output (the benefit among them), each
    criterion with the values it read, its thresholds and article, and the score
    intervals."""
    zh = lang == "zh"
    p = ev.policy
    lines = [
        f"{p.title.zh if zh else p.title.en} ({p.id}) — "
        + ("评估日期 " if zh else "as of ")
        + ev.as_of.isoformat(),
        ("结论: " if zh else "Verdict: ") + VERDICT_TEXT[ev.verdict][0 if zh else 1],
    ]
    if ev.missing_fields:
        lines.append(("缺少数据: " if zh else "Missing data: ") + ", ".join(ev.missing_fields))
    if ev.invalid_fields:
        lines.append(("数据无效: " if zh else "Invalid data: ") + ", ".join(ev.invalid_fields))
    outputs = _output_lines(ev, zh)
    if outputs:
        lines += ["", "结果:" if zh else "Results:", *outputs]
    lines += ["", "条件:" if zh else "Criteria:"]
    for c in ev.criteria:
        mark, text_zh, text_en = criterion_text(c.role, c.outcome, c.applies)
        title = c.title_zh if zh else c.title_en
        lines.append(f"{mark} {title} [{c.article}]: {text_zh if zh else text_en}")
        if not c.applies:
            continue
        rule = "\n        ".join(part.strip() for part in c.expression.strip().splitlines())
        lines.append(("    规则: " if zh else "    rule: ") + rule)
        for name, value in c.values.items():
            lines.append(_value_line(ev, name, value, zh))
        for use in c.parameters:
            lines.append(_parameter_line(p, use, zh))
        if c.flip:
            for change in c.flip["changes"]:
                lines.append("    → " + (change["text_zh"] if zh else change["text_en"]))
    if ev.scores:
        lines.append("")
        lines.append("评分区间:" if zh else "Score intervals:")
        for name, (lo, hi) in ev.scores.items():
            lines.append(f"    {_name_label(p, name, zh)}: [{_fmt(lo, None, zh)}, {_fmt(hi, None, zh)}]")
    return "\n".join(lines)
