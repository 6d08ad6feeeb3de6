"""kechuang.rules: policy rules as code (pure Python, no Django).

One policy definition, two execution paths: :func:`evaluate` explains one enterprise in
process; :func:`compile_policy` emits one SQL query for DuckDB, SQLite, PostgreSQL or Spark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from kechuang.rules.errors import (
    MalformedFacts,
    NotInForce,
    PolicyFileError,
    RulesError,
    UnknownPolicy,
)
from kechuang.rules.explain.decision import Decision
from kechuang.rules.explain.evaluate import evaluate_row
from kechuang.rules.facts import flatten, iso_date
from kechuang.rules.loader import load_policy
from kechuang.rules.policy import POLICY_DIR, Policy

__all__ = [
    "Decision",
    "MalformedFacts",
    "NotInForce",
    "Policy",
    "PolicyFileError",
    "RulesError",
    "UnknownPolicy",
    "compile_policy",
    "evaluate",
    "evaluate_flat",
    "flatten",
    "get_policy",
    "load_policies",
    "policy_ids",
]


def _policy_files(directory: Path = POLICY_DIR) -> dict[str, Path]:
    return {
        p.stem: p for p in sorted(directory.glob("*.yaml")) if not p.name.endswith(".cases.yaml")
    }


def policy_ids() -> list[str]:
    return list(_policy_files())


@cache
def get_policy(policy_id: str) -> Policy:
    """The policy with this id, loaded and checked once per process."""
    files = _policy_files()
    if policy_id not in files:
        raise UnknownPolicy(policy_id, list(files))
    return load_policy(files[policy_id])


def load_policies() -> dict[str, Policy]:
    return {pid: get_policy(pid) for pid in policy_ids()}


def _as_date(as_of: dt.date | str) -> dt.date:
    if isinstance(as_of, dt.datetime):
        return as_of.date()
    if isinstance(as_of, dt.date):
        return as_of
    day = iso_date(as_of) if isinstance(as_of, str) else None
    if day is None:
        raise MalformedFacts("as_of", f"not an ISO date (YYYY-MM-DD): {as_of!r}")
    return day


def evaluate(
    policy: str | Policy, facts: Mapping[str, Any], as_of: dt.date | str
) -> Decision:
    """Evaluate one policy (an id, or a Policy) for one enterprise's nested facts, with a
    full explanation."""
    if isinstance(policy, str):
        policy = get_policy(policy)
    day = _as_date(as_of)
    # A value that does not fit its field (a count of 2.5, "yes" for a flag) is present but
    # impossible: reported in invalid_fields like a date that does not parse (RULES.md 0.4).
    return Decision(evaluate_row(policy, flatten(facts, day, lenient=True), day))


def evaluate_flat(
    policy: str | Policy, row: Mapping[str, Any], as_of: dt.date | str
) -> Decision:
    """Evaluate one policy (an id, or a Policy) over an already flat facts row (e.g. from
    the registry)."""
    if isinstance(policy, str):
        policy = get_policy(policy)
    day = _as_date(as_of)
    return Decision(evaluate_row(policy, dict(row), day))


def compile_policy(policy_id: str, as_of: dt.date | str, dialect: str = "duckdb", **kwargs: Any):
    """One SQL query computing the policy's decision for every row of a facts table."""
    from kechuang.rules.compile.to_sql import compile_sql

    return compile_sql(get_policy(policy_id), _as_date(as_of), dialect, **kwargs)
