"""The tsme policy compiled to SQL (DuckDB) agrees with the in-process evaluation on every case."""

from __future__ import annotations

import pytest

from kechuang.rules import flatten, get_policy
from kechuang.rules.cases import load_cases
from kechuang.rules.explain.evaluate import evaluate_row
from kechuang.rules.runners.duckdb_runner import run_rows

CASES = [c for c in load_cases() if c.policy == "tsme" and c.runs_on_sql]


def test_there_are_tsme_cases():
    assert CASES


def test_duckdb_equals_in_process_for_every_case():
    policy = get_policy("tsme")
    by_day: dict = {}
    for c in CASES:
        by_day.setdefault(c.as_of, []).append(c)
    problems = []
    for as_of, cases in sorted(by_day.items()):
        rows = [flatten(c.facts, c.as_of, f"case{i}") for i, c in enumerate(cases)]
        got = run_rows("tsme", rows, as_of)
        assert len(got) == len(rows)
        for c, row, sql in zip(cases, rows, got, strict=True):
            sql = {k: v for k, v in sql.items() if k != "entity_id"}
            expected = evaluate_row(policy, row, as_of).outputs
            if sql != expected:
                problems.append(f"{c.name}:\n  sql       {sql}\n  in-process {expected}")
    if problems:
        pytest.fail("\n".join(problems))
