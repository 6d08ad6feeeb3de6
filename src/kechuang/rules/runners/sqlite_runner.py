"""Run compiled policies on SQLite, over a table laid out as Django would create it.

Django declares ``decimal`` (NUMERIC affinity: '12.34' is stored as REAL 12.34, '100' as
INTEGER 100), ``bool`` (0/1) and ``integer`` columns; the compiled SQLite dialect rounds
every decimal back to exact integer fen before any arithmetic, which this runner tests.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from kechuang.rules import get_policy
from kechuang.rules.compile.to_sql import compile_sql
from kechuang.rules.facts import FLAT_COLUMNS
from kechuang.rules.runners._common import decode_ordered, numbered

#: Column types as Django's SQLite backend declares them.
DJANGO_SQLITE_TYPES = {
    "money": "decimal",
    "number": "decimal",
    "share": "decimal",
    "count": "bigint",
    "date": "integer",
    "bool": "bool",
    "text": "text",
}


def create_table(con: sqlite3.Connection, table: str = "facts") -> None:
    cols = ", ".join(f'"{c.name}" {DJANGO_SQLITE_TYPES[c.type]} NULL' for c in FLAT_COLUMNS)
    con.execute(f'CREATE TEMP TABLE "{table}" ({cols})')


def _adapt(value: Any) -> Any:
    # Django passes decimals to SQLite as text; the NUMERIC affinity then stores them.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    return value


def insert_rows(con: sqlite3.Connection, rows: Iterable[dict[str, Any]], table: str = "facts") -> None:
    names = [c.name for c in FLAT_COLUMNS]
    sql = (
        f'INSERT INTO "{table}" ({", ".join(chr(34) + n + chr(34) for n in names)}) '
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    con.executemany(sql, ([_adapt(r.get(n)) for n in names] for r in rows))


def run_rows(
    policy_id: str, rows: Iterable[dict[str, Any]], as_of: dt.date
) -> list[dict[str, Any]]:
    """Evaluate one policy over flat rows in an in-memory SQLite; dicts in input order."""
    con = sqlite3.connect(":memory:")
    try:
        create_table(con)
        insert_rows(con, numbered(rows))
        compiled = compile_sql(get_policy(policy_id), as_of, "sqlite", table="facts")
        cur = con.execute(compiled.sql)
        names = [c[0] for c in cur.description]
        return decode_ordered(compiled, names, cur.fetchall())
    finally:
        con.close()
