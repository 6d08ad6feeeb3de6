"""How run results read on the pages: policies by their titles, verdicts in words, field
lists that wrap."""

from __future__ import annotations

from django import template
from django.utils.translation import get_language

from kechuang.calculator.selectors import VERDICT_LABELS
from kechuang.rules import UnknownPolicy, get_policy
from kechuang.rules.policy import Text

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


@register.filter
def policy_title(policy_id: str) -> str:
    """A policy's title in the page's language (its id when no policy file has it)."""
    try:
        return _in_page_language(get_policy(policy_id).title)
    except UnknownPolicy:
        return policy_id


@register.filter
def parameter_title(name: str, policy_id: str) -> str:
    """A policy parameter's title in the page's language (its name when unknown)."""
    try:
        parameter = get_policy(policy_id).parameters.get(name)
    except UnknownPolicy:
        parameter = None
    return name if parameter is None else _in_page_language(parameter.title)


def _in_page_language(text: Text) -> str:
    return text.en if (get_language() or "").startswith("en") else text.zh
