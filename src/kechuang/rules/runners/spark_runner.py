"""Run compiled policies on Spark SQL in local mode, over Arrow tables or Parquet files.

One SparkSession per process: starting the JVM costs seconds, so it is created lazily on
first use and reused by every query (tests included).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from kechuang.rules import get_policy
from kechuang.rules.compile.to_sql import compile_pack, compile_sql
from kechuang.rules.runners._common import check_run, decode_ordered, numbered, staged_output
from kechuang.rules.runners.arrow import arrow_schema, rows_to_arrow
from kechuang.rules.runners.fields import output_columns, select_sql
from kechuang.rules.runners.input_checks import check_facts_file
from kechuang.rules.runners.provenance import run_metadata

_SESSION = None
_LOCK = threading.Lock()


def spark_session():  # -> pyspark.sql.SparkSession (pyspark imported lazily: it is slow)
    """The process's one local Spark session, created on first use."""
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            from pyspark.sql import SparkSession

            _SESSION = (
                SparkSession.builder.master("local[2]")
                .appName("kechuang-rules")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.default.parallelism", "2")
                .config("spark.driver.memory", "1g")
                # Exact decimals: an overflowing decimal must fail, not become NULL.
                .config("spark.sql.ansi.enabled", "true")
                # The compiled queries quote identifiers with double quotes, as standard SQL.
                .config("spark.sql.ansi.doubleQuotedIdentifiers", "true")
                # A pack of several policies is a chain of some fifty CTE layers: more
                # than the analyzer's default 100 passes resolve.
                .config("spark.sql.analyzer.maxIterations", "1000")
                .config("spark.sql.optimizer.maxIterations", "1000")
                .getOrCreate()
            )
            _SESSION.sparkContext.setLogLevel("ERROR")
        return _SESSION


def _view_name(table: str) -> str:
    match = re.match(r"\w+", table)
    if not match:
        raise ValueError(f"not a table name: {table!r}")
    return match.group(0)


def run_parquet(policy_id: str, path: str | Path, as_of: dt.date, table: str = "facts"):
    """The compiled policy as a Spark DataFrame over a Parquet file of flat rows."""
    spark = spark_session()
    compiled = compile_sql(get_policy(policy_id), as_of, "spark", table=table)
    spark.read.parquet(str(path)).createOrReplaceTempView(_view_name(table))
    return compiled, spark.sql(compiled.sql)


def run_rows(
    policy_id: str, rows: Iterable[dict[str, Any]], as_of: dt.date
) -> list[dict[str, Any]]:
    """Evaluate one policy over flat rows on Spark; decision dicts in input order."""
    table = rows_to_arrow(numbered(rows))
    with tempfile.TemporaryDirectory(prefix="kechuang-spark-") as tmp:
        # Through Parquet, the path a registry export takes (and no pandas needed).
        path = Path(tmp) / "facts.parquet"
        pq.write_table(table, path)
        compiled, df = run_parquet(policy_id, path, as_of)
        records = df.collect()
        names = df.columns
        return decode_ordered(compiled, names, [tuple(r) for r in records])


def run_file(
    policy_ids: Sequence[str],
    input_path: str | Path,
    as_of: dt.date,
    out_path: str | Path,
    progress: Callable[[int, int], None] | None = None,
    fields: Sequence[str] | None = None,
) -> int:
    """Evaluate policies over a Parquet file of flat rows on Spark; write one Parquet file.

    The same layout as the DuckDB runner's ``run_file``: ``entity_id`` and per policy its
    result columns (all, or those of ``fields``) prefixed ``<policy>__``, all policies
    evaluated in the same pass, and the same metadata.
    """
    ids = list(policy_ids)
    if not ids:
        raise ValueError("没有政策 no policy given")
    policies = [get_policy(pid) for pid in ids]
    check_run(ids, input_path, out_path)
    # All policies in one pass over the input, as on DuckDB: no join on entity_id.
    pack = compile_pack(policies, as_of, "spark", table="facts")
    query = select_sql(pack, output_columns(pack, ids, fields))
    if not Path(input_path).exists():
        raise FileNotFoundError(f"找不到输入文件 input file not found: {input_path}")
    _check_input(Path(input_path), as_of)
    spark = spark_session()
    _facts_view(spark, Path(input_path))
    if progress:
        progress(1, 2)
    table = spark.sql(query).toArrow()
    if not table.num_rows:
        raise ValueError(f"输入文件没有数据行 the input file has no rows: {input_path}")
    meta = run_metadata(policies, as_of, f"spark {spark.version}", input_path, fields)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    with staged_output(out_path) as staged:
        pq.write_table(table, str(staged))
    if progress:
        progress(2, 2)
    return table.num_rows


def _check_input(path: Path, as_of: dt.date) -> None:
    """The same refusals as a DuckDB run (DuckDB reads the file's columns it checks)."""
    import duckdb

    con = duckdb.connect()
    try:
        src = "read_parquet('" + str(path).replace("'", "''") + "')"
        present = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        check_facts_file(con, src, present, as_of)
    finally:
        con.close()


def _facts_view(spark, path: Path) -> None:  # spark: pyspark.sql.SparkSession
    """A view ``facts`` typed as the flat row: a column the file lacks is NULL (unknown),
    and every column has the row's type, as the DuckDB runner reads it."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(path))
    present = set(df.columns)
    columns = []
    for field in arrow_schema():
        typ = _SPARK_TYPES.get(str(field.type)) or (
            f"DECIMAL({field.type.precision},{field.type.scale})"
        )
        value = F.col(f"`{field.name}`") if field.name in present else F.lit(None)
        columns.append(value.cast(typ).alias(field.name))
    df.select(*columns).createOrReplaceTempView("facts")


_SPARK_TYPES = {"int64": "BIGINT", "bool": "BOOLEAN", "string": "STRING"}
