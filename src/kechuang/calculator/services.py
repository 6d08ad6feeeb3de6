"""The calculator's actions that are not reads of the registry.

``calculator_try`` is the anonymous public calculator (as public policy calculators
do): a visitor's figures in, a decision out. It stores nothing and reads no
registry data, so anybody may call it. The 免申即享 runs' own services are in
``services_runs.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from kechuang.calculator import law
from kechuang.errors import KechuangError
from kechuang.rules import Decision, MalformedFacts, NotInForce, UnknownPolicy, get_policy

#: A nested path splits at single dots; ``2022-01-01..2022-09-30`` is one key.
_PATH_SPLIT = re.compile(r"(?<!\.)\.(?!\.)")


def calculator_try(*, policy_id: str, facts: Mapping[str, Any], as_of: dt.date) -> Decision:
    """One policy's decision for facts a visitor typed (nested form of RULES.md).

    Refuses an unknown policy or facts that are not of the nested form with a
    :class:`KechuangError` naming the field; absent facts are unknown, not zero."""
    try:
        get_policy(policy_id)
    except UnknownPolicy:
        raise KechuangError(f"unknown policy {policy_id!r}", field="policy_id") from None
    try:
        return law.evaluate(policy_id, facts, as_of)
    except MalformedFacts as exc:
        raise KechuangError(str(exc), field=getattr(exc, "field", None)) from None
    except NotInForce as exc:
        raise KechuangError(str(exc), field="as_of") from None


def nested_from_paths(values: Mapping[str, Any]) -> dict[str, Any]:
    """Nested facts from ``{dotted path: value}``; None values are left out (unknown).

    >>> nested_from_paths({"financials.2025.sales_revenue": "100", "ip.class1_count": None})
    {'financials': {'2025': {'sales_revenue': '100'}}}
    >>> nested_from_paths({"rd_expense_expensed_by_period.2022-01-01..2022-09-30": "5"})
    {'rd_expense_expensed_by_period': {'2022-01-01..2022-09-30': '5'}}
    """
    nested: dict[str, Any] = {}
    for path, value in values.items():
        if value is None:
            continue
        parts = _PATH_SPLIT.split(path)
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested
