"""Run compiled policies on DuckDB (the embedded default) over Arrow, Parquet or CSV."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb

from kechuang.rules import get_policy
from kechuang.rules.compile.to_sql import CompiledPolicy, compile_sql
from kechuang.rules.runners.arrow import arrow_schema, decode, rows_to_arrow


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


_READERS = {
    ".parquet": "read_parquet",
    ".pq": "read_parquet",
    ".csv": "read_csv_auto",
    ".arrow": "read_arrow",
    ".feather": "read_arrow",
    ".ipc": "read_arrow",
}


def _source(con: duckdb.DuckDBPyConnection, input_path: Path) -> str:
    """A view ``facts`` over the input file, typed as the flat row (CSV needs the casts)."""
    suffix = input_path.suffix.lower()
    if suffix not in _READERS:
        raise ValueError(
            f"不支持的输入格式 unsupported input format '{suffix}' (use .parquet, .csv or .arrow)"
        )
    if not input_path.exists():
        raise FileNotFoundError(f"找不到输入文件 input file not found: {input_path}")
    path = str(input_path).replace("'", "''")
    if _READERS[suffix] == "read_arrow":
        import pyarrow.ipc as ipc

        try:
            reader = ipc.open_file(input_path)
        except Exception:  # an Arrow stream rather than a file
            reader = ipc.open_stream(input_path)
        con.register("facts_input", reader.read_all())
        src = "facts_input"
    else:
        src = f"{_READERS[suffix]}('{path}')"
    schema = {f.name: f.type for f in arrow_schema()}
    present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    casts = []
    for name, typ in schema.items():
        sql_type = _DUCK_TYPES.get(str(typ), "VARCHAR")
        # A column the export lacks is unknown (NULL), never zero.
        value = f'"{name}"' if name in present else "NULL"
        casts.append(f'CAST({value} AS {sql_type}) AS "{name}"')
    con.execute(f"CREATE TEMP VIEW facts AS SELECT {', '.join(casts)} FROM {src}")
    return "facts"


_DUCK_TYPES = {
    "decimal128(20, 2)": "DECIMAL(20,2)",
    "decimal128(20, 12)": "DECIMAL(20,12)",
    "int64": "BIGINT",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
}


def run_file(
    policy_ids: Sequence[str],
    input_path: str | Path,
    as_of: dt.date,
    out_path: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Evaluate policies over a Parquet/CSV/Arrow file of flat rows, streaming to Parquet.

    The output has ``entity_id`` and, per policy, its result columns prefixed
    ``<policy>__`` (e.g. ``hte__verdict``). DuckDB streams the scan into the Parquet
    writer, so memory does not grow with the row count. With several policies the results
    are joined on ``entity_id``, which must then be unique and present. ``progress(done,
    total)`` is called after each step. Returns the number of rows written.
    """
    ids = list(policy_ids)
    if not ids:
        raise ValueError("没有政策 no policy given")
    policies = [get_policy(pid) for pid in ids]  # unknown ids fail before any work
    total = 2  # checking the input, then the one streaming query
    con = duckdb.connect()
    # A registry of millions streams within a bounded memory: joining several packs'
    # results on entity_id spills to disk instead of growing (10M rows, 2 packs: 2.85 GiB
    # peak without the limit). Row order is not promised (entity_id identifies rows).
    con.execute(f"SET memory_limit = '{os.environ.get('KECHUANG_DUCKDB_MEMORY', '1GB')}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/kechuang-duckdb'")
    try:
        table = _source(con, Path(input_path))
        if len(ids) > 1:
            dup = con.execute(
                f"SELECT count(*) - count(DISTINCT entity_id) FROM {table}"
            ).fetchone()[0]
            if dup:
                raise ValueError(
                    f"entity_id 重复或为空 {dup} duplicate or missing entity_id value(s): "
                    "several policies are joined on it"
                )
        if progress:
            progress(1, total)
        parts = []
        for i, policy in enumerate(policies):
            compiled = compile_sql(policy, as_of, "duckdb", table=table)
            cols = ", ".join(f'"{c}" AS "{policy.id}__{c}"' for c in compiled.columns)
            parts.append(f'(SELECT "entity_id", {cols} FROM ({compiled.sql}) q{i}) p{i}')
        query = parts[0] if len(parts) == 1 else parts[0] + "".join(
            f" JOIN {p} USING (entity_id)" for p in parts[1:]
        )
        out = str(out_path).replace("'", "''")
        con.execute(f"COPY (SELECT * FROM {query}) TO '{out}' (FORMAT PARQUET)")
        if progress:
            progress(2, total)
        return con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    finally:
        con.close()
