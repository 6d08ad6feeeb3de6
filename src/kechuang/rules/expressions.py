"""Policy expressions: SQL expression syntax, parsed with sqlglot and checked.

A policy file writes every condition and amount as a SQL expression. Only a whitelist of
node types is accepted, so the same tree can be interpreted in process (explain) and
compiled to any SQL engine without user-defined functions.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

#: Node types a policy expression may contain.
ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Case,
    exp.If,
    exp.Coalesce,
    exp.Least,
    exp.Greatest,
    exp.Abs,
    exp.Anonymous,
)

#: Engine functions a policy may call, written as ``NAME(args)``; the compiler lowers each
#: to plain SQL arithmetic. ``BAND_*`` take a band name then a value.
FUNCTIONS = {
    "BAND_MIN": 2,  # lower points of the band row the value falls in
    "BAND_MAX": 2,  # upper points of that row
    "BAND_LABEL": 2,  # the row's label (A, B, …)
    "ROUND_DOWN_FEN": 1,  # money rounded down to the fen (分): subsidies never exceed the ratio
    "ROUND_HALF_UP_FEN": 1,  # money rounded half-up to the fen: tax amounts
    "DATE_MINUS_YEARS": 2,  # yyyymmdd date minus N years, for "valid N years from D" tests
    # Whether an input was given at all, valid or not: an invalid value is unknown (RULES.md
    # 0.4), so a rule for an *absent* input (e.g. "share absent: not manufacturing") must
    # not apply to it.
    "GIVEN": 1,
}

COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


class ExpressionError(ValueError):
    """An expression that does not parse or uses something not allowed."""


def parse(text: str) -> exp.Expression:
    """Parse one policy expression.

    >>> parse("a >= 0.05 * b").sql()
    'a >= 0.05 * b'
    >>> parse("SELECT 1")
    Traceback (most recent call last):
    ...
    kechuang.rules.expressions.ExpressionError: not allowed in a policy expression: Select
    """
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        raise ExpressionError(f"expected an expression, got {text!r}")
    try:
        tree = sqlglot.parse_one(str(text), read="duckdb")
    except ParseError as e:
        raise ExpressionError(f"cannot parse '{text}': {e.errors[0]['description']}") from None
    for node in tree.walk():
        if not isinstance(node, ALLOWED_NODES):
            raise ExpressionError(f"not allowed in a policy expression: {type(node).__name__}")
        if isinstance(node, exp.Anonymous):
            name = node.name.upper()
            if name not in FUNCTIONS:
                raise ExpressionError(f"unknown function {node.name}()")
            if len(node.expressions) != FUNCTIONS[name]:
                raise ExpressionError(f"{name}() takes {FUNCTIONS[name]} argument(s)")
        if isinstance(node, exp.Column) and node.table:
            raise ExpressionError(f"qualified names are not allowed: {node.sql()}")
    return tree


def names(tree: exp.Expression) -> set[str]:
    """The names an expression reads (band names passed to BAND_* excluded).

    >>> sorted(names(parse("BAND_MIN(growth, x / y) + z")))
    ['x', 'y', 'z']
    """
    band_args = {
        id(node.expressions[0])
        for node in tree.walk()
        if isinstance(node, exp.Anonymous) and node.name.upper().startswith("BAND_")
    }
    return {
        node.name
        for node in tree.walk()
        if isinstance(node, exp.Column) and id(node) not in band_args
    }


def band_refs(tree: exp.Expression) -> set[str]:
    """Band names an expression uses through BAND_MIN/BAND_MAX/BAND_LABEL."""
    return {
        node.expressions[0].name
        for node in tree.walk()
        if isinstance(node, exp.Anonymous) and node.name.upper().startswith("BAND_")
    }


def topological_order(deps: dict[str, set[str]]) -> list[str]:
    """Order names so that each comes after what it reads; raise on a cycle.

    >>> topological_order({"a": {"b"}, "b": set()})
    ['b', 'a']
    >>> topological_order({"a": {"b"}, "b": {"a"}})
    Traceback (most recent call last):
    ...
    kechuang.rules.expressions.ExpressionError: cycle: a -> b -> a
    """
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name) :] + [name]
            raise ExpressionError("cycle: " + " -> ".join(cycle))
        state[name] = 1
        for dep in sorted(deps.get(name, ())):
            if dep in deps:
                visit(dep, [*path, name])
        state[name] = 2
        order.append(name)

    for name in deps:
        visit(name, [])
    return order


def conjuncts(tree: exp.Expression) -> Iterable[exp.Expression]:
    """The top-level AND operands of a condition."""
    tree = tree.unnest()
    if isinstance(tree, exp.And):
        yield from conjuncts(tree.left)
        yield from conjuncts(tree.right)
    else:
        yield tree
