"""rd_super_deduction: the compiled SQL (DuckDB) agrees with the interpreter on every case."""

from __future__ import annotations

import pytest

from kechuang.rules import flatten, get_policy
from kechuang.rules.cases import load_cases
from kechuang.rules.explain.evaluate import evaluate_row

CASES = [c for c in load_cases() if c.policy == "rd_super_deduction" and c.runs_on_sql]

duckdb_runner = pytest.importorskip("kechuang.rules.runners.duckdb_runner")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_duckdb_agrees_with_interpreter(case):
    row = flatten(case.facts, case.as_of, case.name)
    expected = evaluate_row(get_policy("rd_super_deduction"), row, case.as_of).outputs
    actual = duckdb_runner.run_rows("rd_super_deduction", [row], case.as_of)[0]
    assert actual == expected, case.name
