"""Benchmark: import a 100,000-enterprise workbook (enterprises + fiscal years).

    .venv/bin/python benchmarks/bench_import.py [--count 100000] [--runs 3] [--database-url URL]

Writes the workbook once (benchmarks/out/registry-<count>.xlsx, from the demo
generator), then, for each run, migrates a fresh database (a new SQLite file,
or the PostgreSQL database given, emptied first) and times ``kechuang import``
in a child process that reports its own wall time and peak RSS. Prints the
best run. Targets (issue 3): <= 60 s and <= 1 GiB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"


def write_workbook(path: Path, count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kechuang.settings")
    os.environ.setdefault("KECHUANG_DEBUG", "True")
    import django

    django.setup()
    from openpyxl import Workbook

    from kechuang.registry.columns import ENTERPRISES, FISCAL_YEARS
    from kechuang.registry.demo import generate

    wb = Workbook(write_only=True)
    ent = wb.create_sheet(ENTERPRISES.zh)
    fys = wb.create_sheet(FISCAL_YEARS.zh)
    ent.append([c.zh for c in ENTERPRISES.columns])
    fys.append([c.zh for c in FISCAL_YEARS.columns])
    for r in generate(count=count):
        e = r.enterprise
        ent.append([_cell(getattr(e, c.field)) for c in ENTERPRISES.columns])
        for fy in r.fiscal_years:
            fys.append(
                [e.credit_code] + [_cell(getattr(fy, c.field)) for c in FISCAL_YEARS.columns[1:]]
            )
    wb.save(path)


def _cell(value):
    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None:
        return None
    if hasattr(value, "as_tuple"):  # Decimal: Excel stores numbers, as a user's file would
        return float(value)
    return value


def child(path: Path) -> None:
    """Run in a fresh process: import and report wall time and peak RSS."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kechuang.settings")
    import django

    django.setup()
    from kechuang.registry.services import registry_import

    start = time.perf_counter()
    result = registry_import(file=path, filename=path.name, actor=None)
    elapsed = time.perf_counter() - start
    assert result.ok, result.errors[:5]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "seconds": elapsed,
        # CPU time says more than wall time on a machine other jobs share.
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        # The sheet-reading child process (imports._prefetch), on the other core.
        "reader_cpu_seconds": sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "counts": result.counts,
    }
    print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file per run")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"registry-{args.count}.xlsx"
    if not path.exists():
        t = time.perf_counter()
        write_workbook(path, args.count)
        print(
            f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t:.0f} s"
        )
    kechuang = str(Path(sys.executable).parent / "kechuang")
    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as data:
            env = {**os.environ, "KECHUANG_DATA_DIR": data, "KECHUANG_DEBUG": "True"}
            env.pop("DATABASE_URL", None)
            if args.database_url:
                env["DATABASE_URL"] = args.database_url
                subprocess.run([kechuang, "flush", "--noinput"], env=env, check=False)
            subprocess.run([kechuang, "migrate", "-v", "0", "--skip-checks"], env=env, check=True)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            print(
                f"run {run + 1}: {result['seconds']:.1f} s wall, "
                f"{result.get('cpu_seconds', 0):.1f} s CPU "
                f"(+ {result.get('reader_cpu_seconds', 0):.1f} s reader process), "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB, {result['counts']}"
            )
    best = min(results, key=lambda r: r["seconds"])
    print(
        f"best of {len(results)}: {best['seconds']:.1f} s wall ({best.get('cpu_seconds', 0):.1f} s CPU), "
        f"peak RSS {max(r['peak_rss_mib'] for r in results):.0f} MiB (max over runs)"
    )


if __name__ == "__main__":
    main()
