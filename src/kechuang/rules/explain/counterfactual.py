"""The smallest change that would flip a failing criterion, where it can be computed.

A criterion of the form ``a >= b`` (or ``n / d >= t``) fails by a computable gap: how much
``a`` (or ``n``) would have to grow, everything else unchanged. Compound criteria report
each failing comparison. Nothing here guesses: a criterion of another shape gets no flip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from kechuang.rules.expressions import conjuncts
from kechuang.rules.facts import SCALES
from kechuang.rules.numbers import plain_number

if TYPE_CHECKING:
    from kechuang.rules.explain.evaluate import Evaluator
    from kechuang.rules.policy import Criterion, Policy, Text

_RAISE = (exp.GTE, exp.GT)
_LOWER = (exp.LTE, exp.LT)


@dataclass(frozen=True)
class _Subject:
    """How a value that must change is shown: its name for people and its unit."""

    label: Text | None
    places: int | None  # decimal places it moves by (fen: 2, a count: 0); None: unknown
    unit: str | None = None  # money | count | number | share | date (None: unknown)

    @property
    def is_date(self) -> bool:
        return self.unit == "date"


def _gap(node: exp.Expression, ev: Evaluator, subjects: dict[str, _Subject]) -> dict | None:
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
    info = subjects.get(name, _Subject(None, None))
    label_zh, label_en = (info.label.zh, info.label.en) if info.label else (name, name)
    direction = "increase" if isinstance(node, _RAISE) else "decrease"
    change: dict[str, Any] = {"subject": name, "direction": direction, "unit": info.unit}
    if info.is_date:
        # A date moves to a bound, not "by" a number of yyyymmdd units.
        bound = int(target)
        shown = f"{bound // 10000:04d}-{bound // 100 % 100:02d}-{bound % 100:02d}"
        words = {
            ("increase", False): ("不早于", "on or after"),
            ("increase", True): ("晚于", "after"),
            ("decrease", False): ("不晚于", "on or before"),
            ("decrease", True): ("早于", "before"),
        }[(direction, strict)]
        change.update(by=float(delta), strict=strict, bound=shown)
        change["text_zh"] = f"{label_zh}：需{words[0]} {shown}"
        change["text_en"] = f"{label_en}: would need to be {words[1]} {shown}"
        return change
    if info.places is not None:
        # The value moves in whole units of its kind (fen, people, counts): the smallest
        # change is a whole number of steps, at least the gap (more than it when strict).
        step = Fraction(1, 10**info.places)
        steps = math.floor(delta / step) + 1 if strict else math.ceil(delta / step)
        delta, strict = steps * step, False
    amount = _decimal_text(delta, info.places)
    change.update(by=plain_number(delta), strict=strict)
    verb_zh = "增加" if direction == "increase" else "减少"
    change["text_zh"] = f"{label_zh}：需{verb_zh}{'超过' if strict else '至少'} {amount}"
    change["text_en"] = (
        f"{label_en}: would need to {direction} by {'more than' if strict else 'at least'} {amount}"
    )
    return change


def _decimal_text(value: Fraction, places: int | None) -> str:
    if places is not None:
        return f"{Decimal(value.numerator) / Decimal(value.denominator):,.{places}f}"
    # Unknown unit: six decimals at most, never an exponent.
    return f"{float(value):,.6f}".rstrip("0").rstrip(".")


def _subjects(policy: Policy) -> dict[str, _Subject]:
    """Each input and labelled derived value, with the unit it moves by."""
    subjects = {
        name: _Subject(inp.description, SCALES.get(inp.type), inp.type)
        for name, inp in policy.inputs.items()
    }
    defs = policy.definitions()
    for name, label in policy.labels.items():
        unit = sum_unit(defs[name].tree, policy)
        subjects[name] = _Subject(label, None if unit is None else SCALES[unit], unit)
    return subjects


def sum_unit(tree: exp.Expression, policy: Policy) -> str | None:
    """The unit of a value that adds up inputs of one kind (e.g. R&D over the window years,
    ``CASE WHEN in_window_1 THEN fy1_rd_expense ELSE 0 END + …``): money moves in fen.
    None for anything else: a product or quotient (a ratio) has no unit here."""
    if any(tree.find_all(exp.Mul, exp.Div)):
        return None
    conditions = {id(n) for node in tree.find_all(exp.If) for n in node.this.walk()}
    kinds = set()
    for column in tree.find_all(exp.Column):
        if id(column) in conditions:
            continue
        inp = policy.inputs.get(column.name)
        if inp is None or inp.type not in SCALES or inp.type == "date":
            return None
        kinds.add(inp.type)
    return kinds.pop() if len(kinds) == 1 else None


def _deciding(node: exp.Expression, ev: Evaluator, defs: dict, depth: int = 0) -> list | None:
    """The false comparisons that make a false condition false, or None if some other
    shape decides it or an unknown part would still stand in the way. Follows derived names and the branch a CASE took: a criterion
    guarded against a zero denominator (``CASE WHEN d = 0 THEN FALSE ELSE n / d >= t
    END``) fails by its comparison when ``d`` is not 0, and by nothing computable when it
    is."""
    node = node.unnest()
    if depth > 8:
        return None
    if isinstance(node, exp.And):
        found: list = []
        for part in conjuncts(node):
            value = ev.interp(part)
            if value is None:
                # Fixing the false parts would leave it unknown, not passing: no flip.
                return None
            if value is False:
                inner = _deciding(part, ev, defs, depth + 1)
                if inner is None:
                    return None
                found.extend(inner)
        return found
    if isinstance(node, exp.Case):
        for branch in node.args.get("ifs") or ():
            taken = ev.interp(branch.this)
            if taken is True:
                return _deciding(branch.args["true"], ev, defs, depth + 1)
            if taken is None:
                return None
        default = node.args.get("default")
        return None if default is None else _deciding(default, ev, defs, depth + 1)
    if isinstance(node, exp.Column) and node.name in defs:
        return _deciding(defs[node.name].tree, ev, defs, depth + 1)
    return [node] if isinstance(node, _RAISE + _LOWER) else None


def flip_for(policy: Policy, criterion: Criterion, ev: Evaluator) -> dict | None:
    """The changes that would make a failing criterion pass, or None if not computable."""
    comparisons = _deciding(criterion.expr.tree, ev, policy.definitions())
    if not comparisons:
        return None
    subjects = _subjects(policy)
    changes = [_gap(node, ev, subjects) for node in comparisons]
    if any(change is None for change in changes):
        return None
    return {"changes": changes}
