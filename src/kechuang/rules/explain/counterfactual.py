"""The smallest change that would flip a failing criterion, where it can be computed.

A criterion of the form ``a >= b`` (or ``n / d >= t``) fails by a computable gap: how much
``a`` (or ``n``) would have to grow, everything else unchanged. Compound criteria report
each failing comparison. Nothing here guesses: a criterion of another shape gets no flip.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from kechuang.rules.expressions import conjuncts

if TYPE_CHECKING:
    from kechuang.rules.explain.evaluate import Evaluator
    from kechuang.rules.policy import Criterion, Policy

_RAISE = (exp.GTE, exp.GT)
_LOWER = (exp.LTE, exp.LT)


def _gap(node: exp.Expression, ev: Evaluator) -> dict[str, Any] | None:
    if not isinstance(node, _RAISE + _LOWER):
        return None
    left, right = node.left.unnest(), node.right.unnest()
    value_right = ev.interp(right)
    if isinstance(left, exp.Div):
        num, den = ev.interp(left.left), ev.interp(left.right)
        if num is None or den is None or value_right is None or den <= 0:
            return None
        target, current, subject = Fraction(value_right) * den, Fraction(num), left.left
    else:
        current = ev.interp(left)
        if current is None or value_right is None or isinstance(current, bool | str):
            return None
        target, current, subject = Fraction(value_right), Fraction(current), left
    delta = target - current
    strict = isinstance(node, exp.GT | exp.LT)
    if isinstance(node, _LOWER):
        delta = -delta
    if delta < 0 or (delta == 0 and not strict):
        return None
    name = subject.sql()
    direction = "increase" if isinstance(node, _RAISE) else "decrease"
    more = "more than " if strict else ""
    amount = float(delta)
    return {
        "subject": name,
        "direction": direction,
        "by": amount,
        "strict": strict,
        "text_zh": f"{name} 需{'增加' if direction == 'increase' else '减少'}"
        f"{'超过' if strict else '至少'} {amount:,.2f}",
        "text_en": f"{name} would need to {direction} by {more}{amount:,.2f}"
        + ("" if strict else " at least"),
    }


def flip_for(policy: Policy, criterion: Criterion, ev: Evaluator) -> dict | None:
    """The changes that would make a failing criterion pass, or None if not computable."""
    changes = []
    for part in conjuncts(criterion.expr.tree):
        if ev.interp(part) is False:
            gap = _gap(part, ev)
            if gap is None:
                # Follow a name that is itself a comparison (e.g. a derived condition).
                inner = part.unnest()
                defs = policy.definitions()
                if isinstance(inner, exp.Column) and inner.name in defs:
                    gap = _gap(defs[inner.name].tree.unnest(), ev)
            if gap is None:
                return None
            changes.append(gap)
    return {"changes": changes} if changes else None
