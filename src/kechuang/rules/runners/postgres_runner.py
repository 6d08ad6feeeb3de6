"""Run compiled policies on PostgreSQL (the app database), over a temp facts table."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from typing import Any

import psycopg

from kechuang.rules import get_policy
from kechuang.rules.compile.to_sql import compile_sql
from kechuang.rules.facts import FLAT_COLUMNS
from kechuang.rules.runners._common import decode_ordered, numbered

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"

PG_TYPES = {
    "money": "NUMERIC",
    "number": "NUMERIC",
    "share": "NUMERIC",
    "count": "BIGINT",
    "date": "BIGINT",
    "bool": "BOOLEAN",
    "text": "TEXT",
}


def dsn() -> str:
    return os.environ.get("KECHUANG_RULES_PG_DSN", DEFAULT_DSN)


def load_rows(cur: psycopg.Cursor, rows: Iterable[dict[str, Any]], table: str = "facts") -> None:
    """A session-local temp table of flat facts rows, filled with COPY."""
    cols = ", ".join(f'"{c.name}" {PG_TYPES[c.type]}' for c in FLAT_COLUMNS)
    cur.execute(f'CREATE TEMP TABLE "{table}" ({cols}) ON COMMIT DROP')
    names = [c.name for c in FLAT_COLUMNS]
    with cur.copy(f'COPY "{table}" ({", ".join(chr(34) + n + chr(34) for n in names)}) FROM STDIN') as cp:
        for r in rows:
            cp.write_row([r.get(n) for n in names])


def run_rows(
    policy_id: str,
    rows: Iterable[dict[str, Any]],
    as_of: dt.date,
    conninfo: str | None = None,
) -> list[dict[str, Any]]:
    """Evaluate one policy over flat rows in PostgreSQL; dicts in input order."""
    compiled = compile_sql(get_policy(policy_id), as_of, "postgres", table="facts")
    with psycopg.connect(conninfo or dsn()) as con, con.cursor() as cur:
        # One transaction: the temp table disappears at commit (or on error, at rollback).
        load_rows(cur, numbered(rows))
        cur.execute(compiled.sql)
        names = [c.name for c in cur.description]
        return decode_ordered(compiled, names, cur.fetchall())
