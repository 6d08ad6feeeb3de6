"""Readable explanations of a decision, in Chinese and English."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kechuang.rules.explain.evaluate import Evaluation

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


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是/yes" if value else "否/no"
    try:
        from fractions import Fraction

        if isinstance(value, Fraction | int) and not isinstance(value, bool):
            f = Fraction(value)
            return str(f.numerator) if f.denominator == 1 else f"{float(f):,.6f}"
    except TypeError:
        pass
    return str(value)


def render_text(ev: Evaluation, lang: str = "zh") -> str:
    """A plain-text explanation: verdict, each criterion with values, threshold, article."""
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
    lines.append("")
    for c in ev.criteria:
        mark, text_zh, text_en = ROLE_TEXT[c.role][c.outcome]
        title = c.title_zh if zh else c.title_en
        lines.append(f"{mark} {title} [{c.article}]: {text_zh if zh else text_en}")
        lines.append(f"    {c.expression}")
        for name, value in c.values.items():
            lines.append(f"    {name} = {_fmt(value)}")
        for use in c.parameters:
            since = use.start.isoformat() if use.start else "—"
            lines.append(
                f"    {use.name} = {_fmt(use.value)}"
                + (f" (自 {since} 起, {use.article})" if zh else f" (since {since}, {use.article})")
            )
        if c.flip:
            for change in c.flip["changes"]:
                lines.append("    → " + (change["text_zh"] if zh else change["text_en"]))
    if ev.scores:
        lines.append("")
        lines.append("评分区间:" if zh else "Score intervals:")
        for name, (lo, hi) in ev.scores.items():
            lines.append(f"    {name}: [{_fmt(lo)}, {_fmt(hi)}]")
    return "\n".join(lines)
