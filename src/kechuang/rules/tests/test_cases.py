"""Every policy pack's YAML cases (facts in, expected outputs out), in process."""

from __future__ import annotations

import pytest

from kechuang.rules import evaluate
from kechuang.rules.cases import load_cases, mismatches

CASES = list(load_cases())


@pytest.mark.parametrize("case", CASES, ids=[f"{c.policy}: {c.name}" for c in CASES])
def test_policy_case(case):
    decision = evaluate(case.policy, case.facts, case.as_of)
    problems = mismatches(case.expected, decision.to_dict())
    assert not problems, f"{case.path.name}:{case.line}: " + "; ".join(problems)
