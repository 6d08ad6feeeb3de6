"""Run compiled policies on DuckDB (the embedded default) over Arrow, Parquet or CSV."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from kechuang.rules import get_policy
from kechuang.rules.compile.to_sql import CompiledPolicy, compile_pack, compile_sql
from kechuang.rules.runners._common import check_run, staged_output
from kechuang.rules.runners.arrow import arrow_schema, decode, rows_to_arrow
from kechuang.rules.runners.fields import output_columns, select_sql
from kechuang.rules.runners.input_checks import check_facts_file
from kechuang.rules.runners.provenance import duckdb_option, run_metadata


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


_FACTS = "facts"


def _source(con: duckdb.DuckDBPyConnection, input_path: Path, as_of: dt.date) -> None:
    """A view ``facts`` over the input file, typed as the flat row (CSV needs the casts),
    once the file has passed :func:`~kechuang.rules.runners.input_checks.check_facts_file`."""
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
            try:
                reader = ipc.open_file(input_path)
            except Exception:  # an Arrow stream rather than a file
                reader = ipc.open_stream(input_path)
            table = reader.read_all()
        except Exception as exc:
            raise ValueError(f"不是有效的 Arrow 文件 / not a valid Arrow file: {exc}") from None
        con.register("facts_input", table)
        src = "facts_input"
    else:
        src = f"{_READERS[suffix]}('{path}')"
    schema = {f.name: f.type for f in arrow_schema()}
    present = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    check_facts_file(con, src, present, as_of)
    casts = []
    finer = []  # decimal columns whose values might not fit the row's scale
    for name, typ in schema.items():
        sql_type = _duck_type(typ)
        if present.get(name) == sql_type or _same_decimal_scale(present.get(name), typ):
            # Already the row's type: even a no-op cast costs DuckDB a pass over every
            # value, and the compiled query casts each amount to its exact integer anyway.
            casts.append(f'"{name}"')
            continue
        if name in present and pa.types.is_decimal(typ) and not _fits_scale(present[name], typ):
            finer.append((name, typ.scale, present[name]))
        # A column the export lacks is unknown (NULL), never zero.
        value = f'"{name}"' if name in present else "NULL"
        casts.append(f'CAST({value} AS {sql_type}) AS "{name}"')
    _refuse_finer_values(con, src, finer)
    con.execute(f"CREATE TEMP VIEW {_FACTS} AS SELECT {', '.join(casts)} FROM {src}")


def _fits_scale(found: str, typ: pa.DataType) -> bool:
    """Whether every value of a column of DuckDB type ``found`` fits ``typ``'s scale."""
    if found in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"):
        return True
    if found.startswith("DECIMAL("):
        return int(found.rstrip(")").split(",")[-1]) <= typ.scale
    return False  # DOUBLE (e.g. a CSV guessed so), text: the values decide


def _refuse_finer_values(
    con: duckdb.DuckDBPyConnection, src: str, columns: list[tuple[str, int, str]]
) -> None:
    """Refuse a file whose amounts have more decimals than the row keeps (fractions of a
    fen): casting would round them silently, and a decision would rest on another amount."""
    if not columns:
        return
    tests = []
    for name, scale, found in columns:
        col = f'"{name}"'
        # Decimals and text compare exactly; a DOUBLE (a guessed CSV column) as a double.
        exact = "DOUBLE" if found in ("DOUBLE", "FLOAT", "REAL") else "DECIMAL(38,18)"
        kept = f"TRY_CAST({col} AS DECIMAL(38,{scale}))"
        tests.append(
            f"count(*) FILTER (WHERE {kept} <> TRY_CAST({col} AS {exact})"
            f" OR ({col} IS NOT NULL AND {kept} IS NULL))"
        )
    counts = con.execute(f"SELECT {', '.join(tests)} FROM {src}").fetchone()
    for (name, scale, _), count in zip(columns, counts, strict=True):
        if count:
            raise ValueError(
                f"列 {name} 有 {count} 个值超出 {scale} 位小数或不是数字 / column {name}: "
                f"{count} value(s) with more than {scale} decimal places, or not a number"
            )


_DUCK_TYPES = {"int64": "BIGINT", "bool": "BOOLEAN", "string": "VARCHAR"}


def _duck_type(typ: pa.DataType) -> str:
    if pa.types.is_decimal(typ):
        return f"DECIMAL({typ.precision},{typ.scale})"
    return _DUCK_TYPES[str(typ)]


def _same_decimal_scale(found: str | None, typ: pa.DataType) -> bool:
    """A decimal column of any precision but the row's scale needs no cast."""
    if not found or not pa.types.is_decimal(typ) or not found.startswith("DECIMAL("):
        return False
    return found.rstrip(")").split(",")[-1].strip() == str(typ.scale)


def run_file(
    policy_ids: Sequence[str],
    input_path: str | Path,
    as_of: dt.date,
    out_path: str | Path,
    progress: Callable[[int, int], None] | None = None,
    fields: Sequence[str] | None = None,
) -> int:
    """Evaluate policies over a Parquet/CSV/Arrow file of flat rows, streaming to Parquet.

    The output has ``entity_id`` and, per policy, its result columns prefixed
    ``<policy>__`` (e.g. ``hte__verdict``): every result field, or those of ``fields``
    (see :func:`~kechuang.rules.runners.fields.output_columns`); the file's metadata says
    how it was made (:mod:`~kechuang.rules.runners.provenance`). DuckDB streams the scan
    into the Parquet writer, so memory does not grow with the row count; all policies are
    evaluated in the same pass (one output row per input row). ``progress(done, total)``
    is called after each step. Returns the number of rows written.
    """
    ids = list(policy_ids)
    if not ids:
        raise ValueError("没有政策 no policy given")
    policies = [get_policy(pid) for pid in ids]  # unknown ids fail before any work
    check_run(ids, input_path, out_path)
    # Compiled before the input is read, so an unknown field fails before any work too.
    # All policies in one pass over the input: no join on entity_id.
    pack = compile_pack(policies, as_of, "duckdb", table=_FACTS)
    query = select_sql(pack, output_columns(pack, ids, fields))
    total = 2  # checking the input, then the one streaming query
    con = duckdb.connect()
    # Millions of rows stream within a bounded memory (spilling if it must).
    con.execute(f"SET memory_limit = '{os.environ.get('KECHUANG_DUCKDB_MEMORY', '1GB')}'")
    # Row order is not promised (entity_id identifies rows): lets DuckDB write in parallel.
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/kechuang-duckdb'")
    try:
        _source(con, Path(input_path), as_of)
        if progress:
            progress(1, total)
        meta = run_metadata(policies, as_of, f"duckdb {duckdb.__version__}", input_path, fields)
        with staged_output(out_path) as staged:
            out = str(staged).replace("'", "''")
            con.execute(f"COPY ({query}) TO '{out}' (FORMAT PARQUET, {duckdb_option(meta)})")
            written = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
            if not written:
                # An empty input is a mistake (a wrong or truncated export), not a run.
                raise ValueError(f"输入文件没有数据行 the input file has no rows: {input_path}")
        if progress:
            progress(2, total)
        return written
    finally:
        con.close()
