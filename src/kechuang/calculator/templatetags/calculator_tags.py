"""How run results read on the pages: verdicts in words, field lists that wrap."""

from __future__ import annotations

from django import template

from kechuang.calculator.selectors import VERDICT_LABELS

register = template.Library()


@register.filter
def verdict_label(verdict: str) -> str:
    """符合 / 不符合 / 需专家评审 / 需补充数据 (in the page's language) for a verdict code."""
    label = VERDICT_LABELS.get(verdict)
    return str(label) if label is not None else verdict


@register.filter
def field_list(stored: str) -> str:
    """A stored list of input paths ("a,b,") as people read it ("a, b"): it wraps."""
    return ", ".join(part for part in (stored or "").split(",") if part)
