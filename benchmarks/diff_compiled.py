"""Check: the compiled DuckDB query equals the in-process interpreter on synthetic rows.

    .venv/bin/python benchmarks/diff_compiled.py [--facts benchmarks/out/facts_1m.parquet]
        [--rows 20000] [--as-of 2025-06-30]

Takes ``--rows`` rows spread over the file's row groups, runs every policy both ways and
compares every output (verdict, scores, amounts, ratios, missing and invalid fields) as
the differential test does. Prints the count of differing rows per policy (expected: 0)
and the first differences.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import pyarrow.parquet as pq

from kechuang.rules import get_policy, policy_ids
from kechuang.rules.explain.evaluate import evaluate_row
from kechuang.rules.runners import duckdb_runner

sys.path.insert(0, str(Path(__file__).parents[1] / "src/kechuang/rules/tests"))
from test_differential import normalise  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--facts", default="benchmarks/out/facts_1m.parquet")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2025, 6, 30))
    a = ap.parse_args()
    pf = pq.ParquetFile(a.facts)
    groups = pf.num_row_groups
    per = max(1, a.rows // groups)
    rows = []
    for i in range(groups):
        rows += pf.read_row_group(i).slice(0, per).to_pylist()
        if len(rows) >= a.rows:
            break
    rows = rows[: a.rows]
    failed = 0
    for pid in policy_ids():
        got = duckdb_runner.run_rows(pid, rows, a.as_of)
        policy, bad = get_policy(pid), 0
        for row, actual in zip(rows, got, strict=True):
            expected = evaluate_row(policy, row, a.as_of).outputs
            if normalise(actual) != normalise(expected):
                bad += 1
                if bad <= 3:
                    print(pid, row["entity_id"], {"compiled": actual, "in_process": expected})
        print(f"{pid}: {bad} of {len(rows)} rows differ", flush=True)
        failed += bad
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
