"""Benchmark: the enterprise self-check page (政策计算器), server time for one enterprise.

    .venv/bin/python benchmarks/bench_selfcheck.py [--count 100000] [--enterprises 20]
        [--requests 10] [--runs 3]
        [--database-url postgres://postgres@127.0.0.1:5432/kechuang_bench]

Uses (or builds, deterministically) the demo district of ``--count`` enterprises, as
``bench_facts.py`` does, then asks for ``/calculator/<credit_code>/?as_of=…`` through
Django's full request stack (middleware, session, access check, the one facts SQL
query, every policy in force explained, the template) as a logged-in staff user, in
process: the time is the server's, without a network or a browser. The enterprises are
the ``--enterprises`` with the most registry records (certificates, awards, fiscal years),
so the explanation pages are the longest. Each run times every enterprise
``--requests`` times after one warm-up request; the figure is the median of a run, best
of ``--runs``. Target (issue 5): median <= 150 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time

from district import demo_district, open_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--enterprises", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 30))
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/kechuang_bench"
    )
    args = parser.parse_args()
    # Production settings (DEBUG off: no query log), a key for the session cookie.
    open_database(
        args.database_url,
        KECHUANG_SECRET_KEY="bench-selfcheck-not-secret",
        KECHUANG_ALLOWED_HOSTS="testserver",
    )
    from django.conf import settings

    # No collectstatic here: plain static URLs (the page's own work is what is timed).
    settings.STORAGES["staticfiles"]["BACKEND"] = (
        "django.contrib.staticfiles.storage.StaticFilesStorage"
    )
    from django.db import connection
    from django.db.models import Count
    from django.test import Client

    from kechuang.accounts.models import Role, User
    from kechuang.registry.models import Enterprise

    demo_district(args.count)

    staff, _ = User.objects.get_or_create(
        username="bench_selfcheck_staff", defaults={"role": Role.STAFF}
    )
    client = Client()
    client.force_login(staff)
    codes = list(
        Enterprise.objects.annotate(
            records=Count("certifications", distinct=True)
            + Count("awards", distinct=True)
            + Count("fiscal_years", distinct=True)
        )
        .order_by("-records", "credit_code")
        .values_list("credit_code", flat=True)[: args.enterprises]
    )
    medians = []
    for run in range(args.runs):
        times = []
        for code in codes:
            url = f"/calculator/{code}/?as_of={args.as_of.isoformat()}"
            assert client.get(url).status_code == 200
            for _ in range(args.requests):
                t = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - t)
                assert response.status_code == 200
        medians.append(statistics.median(times))
        times.sort()
        print(
            f"run {run + 1}: {len(times)} requests, median {medians[-1] * 1000:.1f} ms, "
            f"p95 {times[int(len(times) * 0.95) - 1] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"
        )
    print(
        f"{connection.vendor} ({args.count} enterprises), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs: self-check page median best of {args.runs} runs "
        f"{min(medians) * 1000:.1f} ms (runs {', '.join(f'{m * 1000:.1f}' for m in medians)})"
    )


if __name__ == "__main__":
    main()
