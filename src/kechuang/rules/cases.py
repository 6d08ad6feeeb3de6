"""Policy test cases (facts in, expected outputs out), as in OpenFisca's YAML tests.

Each ``policies/<id>.cases.yaml`` holds cases; ``expected`` is matched as a subset of the
decision's ``to_dict()``: mappings by the keys given, lists and scalars exactly, numbers by
exact decimal value, ratios after rounding to 6 decimal places (RULES.md 0.5).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from kechuang.rules.errors import MalformedFacts
from kechuang.rules.facts import COLUMNS_BY_NAME, flatten
from kechuang.rules.policy import POLICY_DIR
from kechuang.rules.yaml_source import load_yaml

#: Amounts from here on are past what the compiled queries take (see ``beyond_sql_range``).
SQL_AMOUNT_LIMIT = Decimal(10) ** 14


@dataclass(frozen=True)
class Case:
    policy: str
    name: str
    as_of: dt.date
    facts: dict
    expected: dict
    path: Path
    line: int | None

    @property
    def runs_on_sql(self) -> bool:
        """Whether the SQL engines can run the case too: every fact fits its flat-row type
        (a count of 2.5 cannot be stored as a count: only ``evaluate`` reports it) and no
        amount is past the compiled queries' range (``beyond_sql_range``)."""
        try:
            flatten(self.facts, self.as_of)
        except MalformedFacts:
            return False
        return not self.beyond_sql_range

    @property
    def beyond_sql_range(self) -> bool:
        """An amount of ¥10^14 or more: DuckDB stops on it with an overflow
        (docs/policy-language.md, known limits; SQLite is exact on much smaller amounts
        only, which the random tests respect); ``evaluate`` is exact."""
        row = flatten(self.facts, self.as_of, lenient=True)
        return any(
            isinstance(value, Decimal)
            and name in COLUMNS_BY_NAME
            and COLUMNS_BY_NAME[name].type in ("money", "number")
            and abs(value) >= SQL_AMOUNT_LIMIT
            for name, value in row.items()
        )


def _plain(value: Any) -> Any:
    """YAML mappings with line info back to plain dicts (keys as the YAML wrote them)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_cases(directory: Path = POLICY_DIR) -> Iterator[Case]:
    for path in sorted(directory.glob("*.cases.yaml")):
        doc = load_yaml(path)
        for item in doc.get("cases") or []:
            as_of = item["as_of"]
            if isinstance(as_of, str):
                as_of = dt.date.fromisoformat(as_of)
            yield Case(
                policy=str(doc["policy"]),
                name=str(item["name"]),
                as_of=as_of,
                facts=_plain(item.get("facts") or {}),
                expected=_plain(item.get("expected") or {}),
                path=path,
                line=getattr(item, "line", None),
            )


def _number_equal(expected: Any, actual: Any) -> bool:
    e, a = Decimal(str(expected)), Decimal(str(actual))
    if e == a:
        return True
    # Ratios are compared at their 6-decimal display (RULES.md 0.5).
    q = Decimal("0.000001")
    return e.quantize(q, ROUND_HALF_UP) == a.quantize(q, ROUND_HALF_UP) and e == e.quantize(q)


def mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected`` (subset semantics for mappings)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '.'}: expected an object, got {actual!r}"]
        out = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual and str(key) not in actual:
                out.append(f"{sub}: missing from the output")
                continue
            out += mismatches(value, actual.get(key, actual.get(str(key))), sub)
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {expected!r}, got {actual!r}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out += mismatches(e, a, f"{path}[{i}]")
        return out
    if isinstance(expected, bool) or expected is None or isinstance(actual, bool) or actual is None:
        return [] if expected is actual or expected == actual and type(expected) is type(actual) else [
            f"{path}: expected {expected!r}, got {actual!r}"
        ]
    if isinstance(expected, int | float | Decimal) and isinstance(actual, int | float | Decimal):
        return [] if _number_equal(expected, actual) else [
            f"{path}: expected {expected}, got {actual}"
        ]
    if isinstance(expected, dt.date):
        expected = expected.isoformat()
    return [] if str(expected) == str(actual) else [f"{path}: expected {expected!r}, got {actual!r}"]
