"""What a file of flat facts rows must be before a batch run decides on it.

DuckDB casts leniently: 2.5 becomes the count 3, 20240230 is just a number, a list becomes
the text "[a]". A run that decided on such values would give verdicts no one could trace
back to the file, and different ones from ``evaluate_flat`` on the same row. Every check
here refuses the whole file, naming the column and how many values are wrong, before any
row is decided (the file is an export to correct, not a set of rows to half-decide).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from kechuang.rules.facts import FLAT_COLUMNS, date_int

_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT")  # fmt: skip
_TEXT = ("VARCHAR",)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _structure(present: dict[str, str]) -> None:
    """Refusals that need no scan: missing identity, derived columns, wrong kinds."""
    if "entity_id" not in present:
        raise ValueError(
            "输入文件没有 entity_id 列 / the input has no entity_id column (every result "
            f"row is matched to its enterprise by it); columns found: {', '.join(list(present)[:8])}"
        )
    # Columns flatten() derives as of the date: a file with the facts but without them
    # would read "unknown" (or "no such year") where the facts are known.
    derived = {
        "registration_date": ("registration_year", "days_since_registration"),
        **{f"fy{k}_sales_revenue": (f"fy{k}_present",) for k in (1, 2, 3)},
    }
    for source, needed in derived.items():
        lacking = [n for n in needed if n not in present]
        if source in present and lacking:
            raise ValueError(
                f"输入文件缺少由 flatten 导出的列 {', '.join(lacking)} / the input lacks the "
                f"columns flatten() derives ({', '.join(lacking)}): export the facts with "
                "kechuang's flatten as of the run's date"
            )
    for col in FLAT_COLUMNS:
        found = present.get(col.name)
        if found is None:
            continue
        nested = found.endswith("]") or found.startswith(("STRUCT", "MAP", "UNION"))
        # A CSV's reader takes a column of digits for numbers (ids 1, 2, 3): integers are
        # text as written; a list, a float or a date is not.
        if col.type == "text" and (nested or found not in (*_TEXT, *_INTEGERS)):
            raise ValueError(
                f"列 {col.name} 应为文本，实为 {found} / column {col.name} must be text, "
                f"not {found}"
            )
        if nested:
            raise ValueError(
                f"列 {col.name} 不能是嵌套类型 {found} / column {col.name} cannot be {found}"
            )
        if col.type == "date" and (found.startswith(("DATE", "TIMESTAMP", "TIME"))):
            raise ValueError(
                f"列 {col.name} 应为 yyyymmdd 整数（如 20250630），实为 {found} / column "
                f"{col.name}: dates are yyyymmdd integers (e.g. 20250630), not {found}"
            )


def check_facts_file(
    con: duckdb.DuckDBPyConnection, src: str, present: dict[str, str], as_of: dt.date
) -> None:
    """Refuse a facts file a run must not decide on; see the module's docstring."""
    if "entity_id" not in present and not con.execute(f"SELECT count(*) FROM {src}").fetchone()[0]:
        # An empty CSV reads as one unnamed column: say what is wrong with it.
        raise ValueError("输入文件没有数据行 the input file has no rows")
    _structure(present)
    tests: list[tuple[str, str]] = [(
        f"count(*) FILTER (WHERE {_quoted('entity_id')} IS NULL)",
        "entity_id 为空的行无法对应到企业 / rows without an entity_id cannot be matched to "
        "their enterprise",
    )]
    if "as_of" in present:
        tests.append((
            f"count(*) FILTER (WHERE {_quoted('as_of')} IS DISTINCT FROM {date_int(as_of)})",
            f"行的 as_of 与 --as-of {as_of} 不同（文件按另一日期导出）/ rows built as of another "
            f"date than --as-of {as_of}: their fiscal years and day counts mean that date",
        ))
    for col in FLAT_COLUMNS:
        found = present.get(col.name)
        if found is None or (found in _INTEGERS and col.type == "count"):
            continue
        q = _quoted(col.name)
        if col.type == "count":
            exact = f"TRY_CAST({q} AS DECIMAL(38,10))"
            tests.append((
                f"count(*) FILTER (WHERE {q} IS NOT NULL AND ({exact} IS NULL"
                f" OR {exact} <> trunc({exact})))",
                f"列 {col.name} 应为整数 / column {col.name} holds counts: whole numbers only",
            ))
        elif col.type == "date":
            day = f"TRY_CAST({q} AS BIGINT)"
            tests.append((
                f"count(*) FILTER (WHERE {q} IS NOT NULL AND ({day} IS NULL OR"
                f" TRY_STRPTIME(CAST({day} AS VARCHAR), '%Y%m%d') IS NULL"
                f" OR {day} < 10000101 OR {day} > 99991231))",
                f"列 {col.name} 有不存在的日期 / column {col.name}: dates that do not exist "
                "(yyyymmdd, e.g. 20240230)",
            ))
    eid = _quoted("entity_id")
    # Two rows for one enterprise would give it two decisions, and which one a reader
    # of the results takes would depend on the file's order.
    repeated = f"count({eid}) - count(DISTINCT {eid})"
    tests.append((repeated, "同一 entity_id 出现在多行 / the same entity_id is on more than one row"))
    counts = con.execute(f"SELECT {', '.join(t for t, _ in tests)} FROM {src}").fetchone()
    for (test, message), count in zip(tests, counts, strict=True):
        if count and test is repeated:
            raise ValueError(f"{message} ({_repeated_ids(con, src)}; {count} 行多余 extra rows)")
        if count:
            raise ValueError(f"{message} ({count} 行 rows)")


def _repeated_ids(con: duckdb.DuckDBPyConnection, src: str) -> str:
    """A few of the entity_ids that are on more than one row, for the refusal message."""
    eid = _quoted("entity_id")
    found = con.execute(
        f"SELECT CAST({eid} AS VARCHAR), count(*) FROM {src} GROUP BY {eid}"
        f" HAVING count(*) > 1 ORDER BY 1 LIMIT 3"
    ).fetchall()
    return ", ".join(f"{i} ×{n}" for i, n in found)
