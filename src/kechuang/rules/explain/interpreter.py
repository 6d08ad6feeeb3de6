"""Evaluate policy expressions in process with SQL semantics and exact fractions.

The interpreter follows SQL's three-valued logic exactly (RULES.md 0.3 is Kleene logic, as
SQL's), so that an expression means the same here as in the compiled query: NULL is
unknown, a CASE branch whose condition is NULL is not taken, a division by zero is NULL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlglot import exp

from kechuang.rules.policy import Band

Lookup = Callable[[str], Any]


def _and(a: Any, b: Any) -> bool | None:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or(a: Any, b: Any) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


_CMP = {
    exp.EQ: lambda a, b: a == b,
    exp.NEQ: lambda a, b: a != b,
    exp.GT: lambda a, b: a > b,
    exp.GTE: lambda a, b: a >= b,
    exp.LT: lambda a, b: a < b,
    exp.LTE: lambda a, b: a <= b,
}


def literal(node: exp.Literal) -> Any:
    if node.is_string:
        return node.this
    return Fraction(Decimal(node.this))


def floor_fen(x: Fraction) -> Fraction:
    """Round down to the fen (分).

    >>> floor_fen(Fraction(1234567, 1000))
    Fraction(12345, 10)
    """
    return Fraction(math.floor(x * 100), 100)


def half_up_fen(x: Fraction) -> Fraction:
    """Round half-up to the fen (分), for non-negative tax amounts.

    >>> half_up_fen(Fraction(5, 1000))
    Fraction(1, 100)
    """
    return Fraction(math.floor(x * 100 + Fraction(1, 2)), 100)


class Interpreter:
    """Evaluates one expression tree, reading names through ``lookup``."""

    def __init__(
        self, lookup: Lookup, bands: dict[str, Band], given: Callable[[str], bool] | None = None
    ) -> None:
        self.lookup = lookup
        self.bands = bands
        # GIVEN(x): the input was given, valid or not; only the evaluator knows (policy
        # checks keep GIVEN out of the raw-value tests that run without it).
        self.given = given

    def __call__(self, node: exp.Expression) -> Any:
        # Hot nodes go through closures built once per tree node (explaining one
        # enterprise evaluates a few hundred nodes per policy); the methods below are the
        # reference semantics the closures follow.
        cached = _CLOSURES.get(id(node))
        if cached is None or cached[0] is not node:
            cached = (node, _closure(node))
            _CLOSURES[id(node)] = cached
        fn = cached[1]
        if fn is not None:
            return fn(self)
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise TypeError(f"cannot evaluate {type(node).__name__}")
        return method(node)

    def _Paren(self, n: exp.Paren) -> Any:
        return self(n.this)

    def _Column(self, n: exp.Column) -> Any:
        return self.lookup(n.name)

    def _Literal(self, n: exp.Literal) -> Any:
        return literal(n)

    def _Boolean(self, n: exp.Boolean) -> bool:
        return bool(n.this)

    def _Null(self, n: exp.Null) -> None:
        return None

    def _Neg(self, n: exp.Neg) -> Any:
        v = self(n.this)
        return None if v is None else -v

    def _arith(self, n: exp.Binary, op: Callable[[Any, Any], Any]) -> Any:
        a, b = self(n.left), self(n.right)
        if a is None or b is None:
            return None
        return op(a, b)

    def _Add(self, n: exp.Add) -> Any:
        return self._arith(n, lambda a, b: a + b)

    def _Sub(self, n: exp.Sub) -> Any:
        return self._arith(n, lambda a, b: a - b)

    def _Mul(self, n: exp.Mul) -> Any:
        return self._arith(n, lambda a, b: a * b)

    def _Div(self, n: exp.Div) -> Any:
        return self._arith(n, lambda a, b: None if b == 0 else Fraction(a) / b)

    def _compare(self, n: exp.Binary) -> bool | None:
        a, b = self(n.left), self(n.right)
        if a is None or b is None:
            return None
        return bool(_CMP[type(n)](a, b))

    _EQ = _NEQ = _GT = _GTE = _LT = _LTE = _compare

    def _And(self, n: exp.And) -> bool | None:
        return _and(self(n.left), self(n.right))

    def _Or(self, n: exp.Or) -> bool | None:
        return _or(self(n.left), self(n.right))

    def _Not(self, n: exp.Not) -> bool | None:
        v = self(n.this)
        return None if v is None else not v

    def _Is(self, n: exp.Is) -> bool:
        v = self(n.this)
        target = n.expression
        if isinstance(target, exp.Null):
            return v is None
        if isinstance(target, exp.Boolean):
            return v is bool(target.this)
        raise TypeError("IS takes NULL, TRUE or FALSE")

    def _In(self, n: exp.In) -> bool | None:
        v = self(n.this)
        if v is None:
            return None
        result: bool | None = False
        for item in n.expressions:
            w = self(item)
            if w is None:
                result = None
            elif w == v:
                return True
        return result

    def _Between(self, n: exp.Between) -> bool | None:
        v, lo, hi = self(n.this), self(n.args["low"]), self(n.args["high"])
        return _and(
            None if v is None or lo is None else v >= lo,
            None if v is None or hi is None else v <= hi,
        )

    def _Case(self, n: exp.Case) -> Any:
        for branch in n.args.get("ifs") or []:
            if self(branch.this) is True:
                return self(branch.args["true"])
        default = n.args.get("default")
        return None if default is None else self(default)

    def _If(self, n: exp.If) -> Any:
        if self(n.this) is True:
            return self(n.args["true"])
        false = n.args.get("false")
        return None if false is None else self(false)

    def _Coalesce(self, n: exp.Coalesce) -> Any:
        for arg in [n.this, *n.expressions]:
            v = self(arg)
            if v is not None:
                return v
        return None

    def _extreme(self, n: exp.Func, pick: Callable) -> Any:
        # Strict: any unknown operand makes the result unknown (engines disagree on
        # LEAST(1, NULL), so the compiler writes it as a CASE with the same meaning).
        values = [self(arg) for arg in [n.this, *n.expressions]]
        if any(v is None for v in values):
            return None
        return pick(values)

    def _Least(self, n: exp.Least) -> Any:
        return self._extreme(n, min)

    def _Greatest(self, n: exp.Greatest) -> Any:
        return self._extreme(n, max)

    def _Abs(self, n: exp.Abs) -> Any:
        v = self(n.this)
        return None if v is None else abs(v)

    def _Anonymous(self, n: exp.Anonymous) -> Any:
        name = n.name.upper()
        args = n.expressions
        if name == "GIVEN":
            if self.given is None:
                raise TypeError("GIVEN() needs the evaluator's record of given inputs")
            return self.given(args[0].name)
        if name.startswith("BAND_"):
            band = self.bands[args[0].name]
            x = self(args[1])
            if x is None:
                return None
            row = band.row_for(Fraction(x))
            if row is None:
                return None
            if name == "BAND_MIN":
                return row.points[0]
            if name == "BAND_MAX":
                return row.points[1]
            return row.label
        x = self(args[0])
        if x is None:
            return None
        if name == "ROUND_DOWN_FEN":
            return floor_fen(Fraction(x))
        if name == "ROUND_HALF_UP_FEN":
            return half_up_fen(Fraction(x))
        if name == "DATE_MINUS_YEARS":
            years = self(args[1])
            return None if years is None else int(x) - 10000 * int(years)
        raise TypeError(f"unknown function {name}")


# ----------------------------------------------------------------------------- closures

_CLOSURES: dict[int, tuple[exp.Expression, Callable[[Interpreter], Any] | None]] = {}


def _closure(node: exp.Expression) -> Callable[[Interpreter], Any] | None:
    """A fast evaluator for the commonest nodes, or None to use the method."""
    if isinstance(node, exp.Paren):
        inner = node.this
        return lambda it: it(inner)
    if isinstance(node, exp.Column):
        name = node.name
        return lambda it: it.lookup(name)
    if isinstance(node, exp.Literal):
        value = literal(node)
        return lambda it: value
    if isinstance(node, exp.Boolean):
        value = bool(node.this)
        return lambda it: value
    if isinstance(node, exp.Null):
        return lambda it: None
    if type(node) in _CMP:
        op = _CMP[type(node)]
        left, right = node.left, node.right

        def compare(it: Interpreter) -> bool | None:
            a = it(left)
            if a is None:
                return None
            b = it(right)
            return None if b is None else bool(op(a, b))

        return compare
    if isinstance(node, exp.Add | exp.Sub | exp.Mul):
        left, right = node.left, node.right
        arith = {
            exp.Add: lambda a, b: a + b,
            exp.Sub: lambda a, b: a - b,
            exp.Mul: lambda a, b: a * b,
        }[type(node)]

        def arithmetic(it: Interpreter) -> Any:
            a = it(left)
            if a is None:
                return None
            b = it(right)
            return None if b is None else arith(a, b)

        return arithmetic
    if isinstance(node, exp.And):
        left, right = node.left, node.right
        return lambda it: _and(it(left), it(right))
    if isinstance(node, exp.Or):
        left, right = node.left, node.right
        return lambda it: _or(it(left), it(right))
    if isinstance(node, exp.Case):
        branches = [(b.this, b.args["true"]) for b in node.args.get("ifs") or []]
        default = node.args.get("default")

        def case(it: Interpreter) -> Any:
            for cond, value in branches:
                if it(cond) is True:
                    return it(value)
            return None if default is None else it(default)

        return case
    return None
