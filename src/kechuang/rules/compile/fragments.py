"""What every part of the SQL compiler shares: compiled fragments and the query's shape."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction

from kechuang.rules.compile.dialects import Dialect

INT64_MAX = 2**63 - 1


class CompileError(ValueError):
    pass


@dataclass(frozen=True)
class Sql:
    """A compiled expression: SQL text and what kind of value it yields.

    ``kind`` is ``num`` (an exact integer standing for value * 10**scale), ``float``
    (display only), ``bool`` or ``text``.
    """

    text: str
    kind: str
    scale: int = 0


@dataclass
class CompiledPolicy:
    policy_id: str
    dialect: str
    as_of: dt.date
    sql: str
    #: output column -> (path in to_dict, type) so runners can rebuild decision dicts.
    columns: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)


def ident(name: str) -> str:
    return f'"{name}"'


def places(value: Fraction) -> int:
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    return places


def int_literal(text: str) -> int | None:
    """The value of an integer literal as compiled (``5``, ``-5``, ``(-5)``), else None."""
    bare = text.strip("()")
    return int(bare) if bare.lstrip("-").isdigit() else None


def is_column(text: str) -> bool:
    return text.startswith('"') and text.endswith('"') and '"' not in text[1:-1]


def with_ctes(d: Dialect, ctes: list[tuple[str, str]]) -> str:
    return ",\n".join(f"{name} {d.cte_keyword} ({body}{d.cte_suffix})" for name, body in ctes)


def rename_output(item: str, out_prefix: str) -> str:
    """``<expr> AS "name"`` -> ``<expr> AS "<out_prefix>name"``."""
    head, sep, name = item.rpartition(' AS "')
    if not sep:
        raise CompileError(f"internal: an output without a name: {item[:80]}")
    return f'{head} AS "{out_prefix}{name}'
