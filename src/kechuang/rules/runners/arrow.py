"""Flat facts rows as Arrow tables, and query results back as decision dicts."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pyarrow as pa

from kechuang.rules.compile.to_sql import CompiledPolicy
from kechuang.rules.facts import FLAT_COLUMNS, typed
from kechuang.rules.numbers import json_number

_ARROW = {
    "money": pa.decimal128(18, 2),
    "number": pa.decimal128(18, 2),
    "share": pa.decimal128(38, 12),
    "count": pa.int64(),
    "date": pa.int64(),
    "bool": pa.bool_(),
    "text": pa.string(),
}


def arrow_schema() -> pa.Schema:
    """The flat facts row as an Arrow schema (the Parquet layout of a registry export)."""
    return pa.schema([pa.field(c.name, _ARROW[c.type]) for c in FLAT_COLUMNS])


def rows_to_arrow(rows: Iterable[dict[str, Any]]) -> pa.Table:
    schema = arrow_schema()
    rows = [typed(r) for r in rows]
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema})


def _number(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        # SQLite returns REAL for exact decimals divided back from fen: its shortest repr
        # is the exact decimal for amounts below 10**15 fen.
        value = Decimal(repr(value))
    d = Decimal(value)
    if d == d.to_integral_value():
        return int(d)
    return json_number(d)


def decode(compiled: CompiledPolicy, row: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the JSON-ready output dict of one result row (as ``to_dict()`` shapes it)."""
    out: dict[str, Any] = {}

    def put(path: tuple[str, ...], value: Any) -> None:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    absent = {
        path
        for col, (path, typ) in compiled.columns.items()
        if typ == "present" and not row.get(col)
    }
    intervals: dict[tuple[str, ...], list[Any]] = {}
    for col, (path, typ) in compiled.columns.items():
        if typ == "present" or path in absent:
            continue
        value = row.get(col)
        if typ.startswith("interval_"):
            intervals.setdefault(path, [None, None])[0 if typ.endswith("min") else 1] = _number(
                value
            )
            continue
        if typ == "list":
            value = [] if value in (None, "") else value.rstrip(",").split(",")
            if path[-1] in ("missing_fields", "invalid_fields"):
                value = sorted(value)
        elif typ == "bool":
            value = None if value is None else bool(value)
        elif typ == "ratio":
            # A float even when whole, as in process; exact where a float alone is not.
            if isinstance(value, float):
                value = Decimal(repr(round(value, 6)))
            value = None if value is None else json_number(Decimal(value))
        elif typ != "text":
            value = _number(value)
        put(path, value)
    for path, (lo, hi) in intervals.items():
        put(path, None if lo is None or hi is None else [lo, hi])
    return out
