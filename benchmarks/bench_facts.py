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
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 30))
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/kechuang_bench"
    )
    args = parser.parse_args()
    if args.database_url.startswith("postgres"):
        _create_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kechuang.settings")
    os.environ.setdefault("KECHUANG_DEBUG", "True")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from kechuang.registry.demo import demo_build
    from kechuang.registry.models import Enterprise
    from kechuang.registry.selectors import enterprise_facts_as_of, enterprise_facts_rows

    call_command("migrate", verbosity=0)
    if Enterprise.objects.count() != args.count:
        call_command("flush", interactive=False, verbosity=0)
        t = time.perf_counter()
        demo_build(count=args.count)
        print(f"built {args.count} enterprises in {time.perf_counter() - t:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would give
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


def _create_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
