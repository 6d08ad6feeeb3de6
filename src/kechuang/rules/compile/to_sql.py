"""Compile a policy to one SQL query over a table of flat facts rows.

The query has the same meaning as the in-process interpreter, on every engine:

- **Exact numbers.** Every numeric value travels as an exact integer, the value times
  10**scale (money in fen; a literal 0.05 as 5 at scale 2). Additions rescale to the larger
  scale, products add scales, and a comparison with a division (``n / d >= t``) becomes a
  sign-aware cross-multiplication, so a ratio exactly on its bound passes on SQLite too.
- **Parameters folded** for the as-of date; a parameter selected by a row's own date
  (e.g. the voucher ratio by order date) becomes a CASE over its timeline.
- **Bands become CASE expressions**, NULL stays unknown, and ``LEAST``/``GREATEST`` are
  written as CASEs because engines disagree about NULL arguments.
- No user-defined functions: only plain SQL that DuckDB, SQLite, PostgreSQL and Spark run.
- **Doubles only where proven right.** On DuckDB a ratio of products (a 3-year growth
  rate, 128-bit integers to compare exactly) is first compared in double precision with an
  error bound; the rows the bound cannot settle take the exact integers
  (``RatioMixin._guard_ratio``).

Derived values are computed in a chain of CTEs, one per dependency level.

This module holds the entry points; the compiler is split by what it compiles:
``query`` (the :class:`Compiler`: inputs, invalid and missing flags, definition layers,
outputs), ``nodes`` (one method per expression node), ``bands`` (threshold tables as
CASEs), ``ratios`` (cross-multiplied comparisons, exact display, the double guard),
``fragments`` (the compiled-fragment types shared by all) and ``dialects`` (what differs
between engines, as data).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from kechuang.rules.compile.dialects import get_dialect
from kechuang.rules.compile.fragments import CompiledPolicy, CompileError, ident, with_ctes
from kechuang.rules.compile.query import Compiler
from kechuang.rules.policy import BUILTINS, Expr, Policy


def compile_pack(
    policies: Sequence[Policy], as_of: dt.date, dialect: str = "duckdb", table: str = "facts"
) -> CompiledPolicy:
    """Compile several policies into one query: one pass over ``table``, no join.

    Each policy's layers read the previous policy's last layer, which carries the inputs
    later policies still need and the outputs so far; its outputs are named
    ``<policy>__<column>``. Rows stay one per input row, so nothing is joined on
    ``entity_id`` (a join of millions of rows would spill to disk).
    """
    if not policies:
        raise CompileError("没有政策 no policy given")
    d = get_dialect(dialect)

    def needs(policy: Policy) -> list[str]:
        out = []
        for name in sorted(policy.inputs):
            out.append(name)
            if policy.inputs[name].type == "date" and name + "_invalid" not in policy.inputs:
                out.append(name + "_invalid")
        return out

    wanted = [needs(p) for p in policies]
    union = list(dict.fromkeys(n for names in wanted for n in names))
    src = ", ".join(f"{ident(n)} AS {ident('__src__' + n)}" for n in union)
    ctes: list[tuple[str, str]] = [("pack_src", f'SELECT "entity_id", {src} FROM {table}')]
    prev, outputs, columns = "pack_src", [], {}
    for i, policy in enumerate(policies):
        later = list(dict.fromkeys(n for names in wanted[i + 1 :] for n in names))
        carry = outputs + ["__src__" + n for n in later]
        parts, final, cols = Compiler(policy, as_of, d).parts(
            prev, source=lambda n: "__src__" + n, carry=carry,
            prefix=f"p{i}_", out_prefix=f"{policy.id}__",
        )
        ctes += parts
        ctes.append((f"p{i}_out", final))
        prev = f"p{i}_out"
        outputs += list(cols)
        columns.update(cols)
    with_sql = with_ctes(d, ctes)
    sql = f"WITH {with_sql}\nSELECT \"entity_id\", {', '.join(map(ident, outputs))} FROM {prev}"
    pack_id = "+".join(p.id for p in policies)
    return CompiledPolicy(pack_id, d.name, as_of, sql, columns)


def compile_sql(
    policy: Policy, as_of: dt.date, dialect: str = "duckdb", table: str = "facts"
) -> CompiledPolicy:
    """Compile ``policy`` as of ``as_of`` to one query over ``table`` for ``dialect``."""
    d = get_dialect(dialect)
    # Not parsed back here (that took most of the compile time): the test suite runs every
    # policy's query on every engine.
    return Compiler(policy, as_of, d).compile(table)


__all__ = ["BUILTINS", "CompileError", "CompiledPolicy", "Expr", "compile_pack", "compile_sql"]
