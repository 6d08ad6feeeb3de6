"""Engine differences, as data: one small table per target engine.

Every numeric value in a compiled query is an exact integer: the value times 10**scale
(money in fen, ratios scaled by their decimal places). Each engine needs its own integer
type wide enough for products of two amounts, and its own integer division.
"""

from __future__ import annotations

from dataclasses import dataclass

from kechuang.rules.errors import UnknownDialect


@dataclass(frozen=True)
class Dialect:
    name: str
    #: sqlglot's name for the engine (used to check that the generated SQL parses).
    sqlglot: str
    #: Convert an input column holding a decimal number to the exact integer value*10**s.
    to_int: str
    #: Convert an input column holding a whole number (count, yyyymmdd date).
    to_int0: str
    #: Integer (floor, for non-negative operands) division of exact integers.
    intdiv: str
    #: Floating-point division, for displayed ratios only (never compared).
    float_div: str
    true: str
    false: str
    text_type: str
    #: The outermost output of an exact value: scaled integer -> decimal number.
    #: The scaled integer x back to its decimal value; {inv} is 10**-s as a literal.
    to_decimal: str
    #: The engine's double-precision type (displayed ratios only).
    float_type: str = "DOUBLE"
    #: How to keep the engine from inlining each CTE into the next: inlined, every layer
    #: would copy the expressions of the layers below it, and the query tree grows
    #: exponentially (a PostgreSQL backend reached 23 GiB planning hte before this).
    cte_keyword: str = "AS MATERIALIZED"
    #: Appended to every CTE body. PostgreSQL: ``OFFSET 0`` keeps the planner from pulling
    #: a layer up into the next (the same guard as MATERIALIZED against the blow-up) while
    #: rows still stream through, instead of being written to a tuplestore per layer.
    cte_suffix: str = ""
    #: Whether displayed ratios are rounded in exact integer arithmetic (SQLite's int64
    #: would overflow on products of amounts, so it rounds a floating-point quotient).
    exact_ratio_display: bool = True
    #: Widen an exact integer before a multiplication ({x}); "{x}" where every integer is
    #: already wide. Lets an engine keep inputs in a fast 64-bit type.
    widen: str = "{x}"
    #: ``to_int`` for an input whose exact integer may not fit 64 bits (a share: 12
    #: decimal places); defaults to ``to_int``.
    to_int_wide: str = ""
    #: ``intdiv`` on 64-bit integers: the compiler takes it for operands it has checked are
    #: small enough. DuckDB only, where 128-bit division is ~10x slower than 64-bit.
    intdiv64: str = ""
    #: Whether a condition is TRUE (not FALSE, not NULL). ``IS TRUE`` is cheaper than
    #: COALESCE on DuckDB; Spark keeps COALESCE.
    is_true: str = "COALESCE({x}, FALSE)"
    #: Whether a ratio of products (a 3-year growth rate: 128-bit integers to compare
    #: exactly) is first decided in double precision where an error bound proves the
    #: double agrees, the exact integers computed only for the rows it cannot decide.
    guard_double: bool = False
    #: A call concatenating {args} that skips NULL arguments ("" where the engine has
    #: none for every version it supports: lists are then built with ||).
    concat: str = ""


DIALECTS: dict[str, Dialect] = {
    "duckdb": Dialect(
        name="duckdb",
        is_true="(({x}) IS TRUE)",
        guard_double=True,
        concat="concat({args})",
        sqlglot="duckdb",
        # HUGEINT (int128): products of two amounts in fen stay exact; DuckDB's `//` on
        # DECIMAL returns a DOUBLE, so exact division must happen on HUGEINT.
        # Exact for DECIMAL columns; a DOUBLE or text column (CSV) is rounded by the cast.
        # DECIMAL(18, s) is a 64-bit decimal in DuckDB: casting through it is 6x faster
        # than through DECIMAL(38, s) (int128). The product by 10**s must stay below 10**18
        # too: amounts below 10**14 yuan (larger ones make DuckDB stop with an overflow).
        to_int="CAST(CAST({x} AS DECIMAL({p},{s})) * {f} AS BIGINT)",
        # A share (12 places): through DOUBLE where that is provably exact (|x| <= b, see
        # the compiler), 50x cheaper than DECIMAL(38) arithmetic and its 128-bit division.
        to_int_wide=(
            "CASE WHEN {x} BETWEEN -{b} AND {b} THEN CAST(ROUND(CAST({x} AS DOUBLE) * {f}) AS HUGEINT) "
            "ELSE CAST(CAST({x} AS DECIMAL(38,{s})) * {f} AS HUGEINT) END"
        ),
        to_int0="CAST({x} AS BIGINT)",
        widen="CAST({x} AS HUGEINT)",
        intdiv="(CAST({a} AS HUGEINT) // CAST({b} AS HUGEINT))",
        intdiv64="({a} // {b})",
        float_div="(CAST({a} AS DOUBLE) / NULLIF(CAST({b} AS DOUBLE), 0))",
        true="TRUE",
        false="FALSE",
        text_type="VARCHAR",
        # DuckDB keeps each inlined CTE as its own projection (no blow-up), and inlining
        # lets it prune columns: 6.0 s against 7.3 s materialised for hte over 1M rows.
        cte_keyword="AS",
        to_decimal="(CAST({x} AS DECIMAL(38,0)) * {inv})",
    ),
    "postgres": Dialect(
        name="postgres",
        is_true="(({x}) IS TRUE)",
        sqlglot="postgres",
        # BIGINT: NUMERIC arithmetic is several times slower; products of two amounts
        # are widened to NUMERIC (exact, any size), and an overflow raises, never wraps.
        to_int="CAST(ROUND(CAST({x} AS NUMERIC) * {f}) AS BIGINT)",
        to_int_wide="ROUND(CAST({x} AS NUMERIC) * {f})",
        to_int0="CAST({x} AS BIGINT)",
        widen="CAST({x} AS NUMERIC)",
        intdiv="DIV({a}, {b})",
        float_div="(CAST({a} AS DOUBLE PRECISION) / NULLIF(CAST({b} AS DOUBLE PRECISION), 0))",
        true="TRUE",
        false="FALSE",
        text_type="TEXT",
        to_decimal="(CAST({x} AS NUMERIC) / {f})",
        float_type="DOUBLE PRECISION",
        cte_keyword="AS",
        cte_suffix=" OFFSET 0",
    ),
    "sqlite": Dialect(
        name="sqlite",
        is_true="(({x}) IS TRUE)",
        sqlglot="sqlite",
        # SQLite has no decimal type: Django stores decimals as REAL, so round back to the
        # integer number of fen before any arithmetic. Integer `/` truncates in SQLite.
        to_int="CAST(ROUND({x} * {f}) AS INTEGER)",
        to_int0="CAST({x} AS INTEGER)",
        intdiv="({a} / {b})",
        float_div="(CAST({a} AS REAL) / NULLIF({b}, 0))",
        true="1",
        false="0",
        text_type="TEXT",
        exact_ratio_display=False,
        to_decimal="(CAST({x} AS REAL) / {f})",
        float_type="REAL",
    ),
    "spark": Dialect(
        name="spark",
        sqlglot="spark",
        to_int="CAST(ROUND(CAST({x} AS DECIMAL(38,12)) * {f}) AS DECIMAL(38,0))",
        to_int0="CAST({x} AS DECIMAL(38,0))",
        # Spark's DIV returns a 64-bit LONG, which wraps past 9.2e18 (a displayed ratio of a
        # large amount over a tiny one). Decimal division rounds to 6 places, so its floor
        # is the quotient or one more: step back where q * b passes a.
        intdiv=(
            "CAST((FLOOR(CAST({a} AS DECIMAL(38,0)) / CAST({b} AS DECIMAL(38,0))) - "
            "CASE WHEN FLOOR(CAST({a} AS DECIMAL(38,0)) / CAST({b} AS DECIMAL(38,0))) "
            "* CAST({b} AS DECIMAL(38,0)) > CAST({a} AS DECIMAL(38,0)) THEN 1 ELSE 0 END) "
            "AS DECIMAL(38,0))"
        ),
        float_div="(CAST({a} AS DOUBLE) / NULLIF(CAST({b} AS DOUBLE), 0))",
        true="TRUE",
        false="FALSE",
        text_type="STRING",
        cte_keyword="AS",
        to_decimal="(CAST({x} AS DECIMAL(38,0)) * {inv})",
    ),
}


def get_dialect(name: str) -> Dialect:
    if name not in DIALECTS:
        raise UnknownDialect(name, list(DIALECTS))
    return DIALECTS[name]
