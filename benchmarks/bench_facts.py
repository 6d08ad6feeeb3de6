"""Benchmark: the flat facts rows of 100,000 enterprises as of a date, in the database.

    .venv/bin/python benchmarks/bench_facts.py [--count 100000] [--runs 5]
        [--database-url postgres://postgres@127.0.0.1:5432/kechuang_bench]

Creates the database if needed, fills it once with the demo district of
``--count`` enterprises (deterministic; reused by later runs), then times the
one SELECT of ``registry.selectors.enterprise_facts_as_of``: executed with
every row fetched raw, and through ``enterprise_facts_rows`` (typed dict
rows). Prints the best of ``--runs``. Target (issue 3): <= 5 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from district import demo_district, open_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 30))
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/kechuang_bench"
    )
    args = parser.parse_args()
    open_database(args.database_url, KECHUANG_DEBUG="True")
    demo_district(args.count)
    from django.db import connection

    from kechuang.registry.selectors import enterprise_facts_as_of, enterprise_facts_rows

    sql = enterprise_facts_as_of(as_of=args.as_of)
    raw, typed = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql)
            n = len(cursor.fetchall())
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        rows = enterprise_facts_rows(as_of=args.as_of)
        typed.append(time.perf_counter() - t)
        assert n == len(rows) == args.count
    print(
        f"{connection.vendor}: facts of {args.count} enterprises as of {args.as_of}: "
        f"SQL + fetch best {min(raw):.2f} s (runs {', '.join(f'{x:.2f}' for x in raw)}); "
        f"typed dict rows best {min(typed):.2f} s"
    )


if __name__ == "__main__":
    main()
