"""Run compiled policies on DuckDB (the embedded default) over Arrow, Parquet or CSV."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import duckdb

from kechuang.rules import get_policy
from kechuang.rules.compile.to_sql import CompiledPolicy, compile_sql
from kechuang.rules.runners.arrow import decode, rows_to_arrow


def run_rows(
    policy_id: str, rows: Iterable[dict[str, Any]], as_of: dt.date
) -> list[dict[str, Any]]:
    """Evaluate one policy over flat rows in DuckDB; decision dicts in input order."""
    con = duckdb.connect()
    facts = rows_to_arrow(rows)  # noqa: F841 - DuckDB reads the Arrow table by its name
    con.execute("CREATE TEMP TABLE facts AS SELECT *, row_number() OVER () AS __pos FROM facts")
    compiled = compile_sql(get_policy(policy_id), as_of, "duckdb", table="facts ORDER BY __pos")
    return fetch(con, compiled)


def fetch(con: duckdb.DuckDBPyConnection, compiled: CompiledPolicy) -> list[dict[str, Any]]:
    cur = con.execute(compiled.sql)
    names = [c[0] for c in cur.description]
    return [decode(compiled, dict(zip(names, r, strict=True))) for r in cur.fetchall()]
