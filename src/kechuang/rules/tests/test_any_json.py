"""Whatever JSON a caller sends as facts, ``evaluate`` answers with a decision or refuses it
with one ``MalformedFacts`` naming the field: never another exception (a harness, the API
and the CLI all rely on that), and the decision's JSON and text can always be produced."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kechuang.rules import MalformedFacts, evaluate
from kechuang.rules.facts import FLAT_COLUMNS

POLICIES = ["hte", "tsme", "rd_super_deduction", "voucher"]
AS_OF = dt.date(2025, 6, 30)

#: The real nested paths (years filled in for 2022–2024), so that values land on fields.
_PATHS = sorted(
    {c.nested_path(AS_OF) for c in FLAT_COLUMNS}
    | {c.nested_path(dt.date(2024, 6, 30)) for c in FLAT_COLUMNS}
    | {c.nested_path(dt.date(2023, 6, 30)) for c in FLAT_COLUMNS}
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**22), max_value=10**22),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**18), max_value=10**18),
    st.sampled_from(["", "abc", "2024-02-29", "2023-02-29", "20240101", "1e5", " 7 ", "true", "-0",
                     "manufacturing", "wholesale_retail", "enterprise", "startup_team",
                     "shanghai_municipal", "district_service_voucher", "2022-01-01..2022-09-30"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["2022", "2023", "2024", "x", "", "1"]), inner, max_size=3),
    ),
    max_leaves=6,
)


def _set(facts: dict, path: str, value) -> None:
    node = facts
    *parents, leaf = path.split(".")
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[leaf] = value


@st.composite
def facts(draw) -> dict:
    out: dict = {}
    for path in draw(st.lists(st.sampled_from(_PATHS), max_size=12)):
        _set(out, path, draw(_json))
    # Whole sub-objects of the wrong shape, too (a list for financials, a number for ip).
    for key in draw(st.lists(st.sampled_from(["financials", "ip", "team", "conversions",
                                              "expert_scores", "direct_qualification",
                                              "rd_expense_expensed_by_period"]), max_size=2)):
        out[key] = draw(_json)
    return out


@pytest.mark.parametrize("policy_id", POLICIES)
def test_any_json_facts_get_a_decision_or_one_clear_refusal(policy_id):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(facts())
    def run(nested):
        try:
            decision = evaluate(policy_id, nested, AS_OF)
        except MalformedFacts as exc:
            assert exc.field and str(exc).strip() and "\n" not in str(exc)
            return
        out = json.loads(decision.to_json(), parse_float=Decimal)
        assert out["verdict"] in ("eligible", "ineligible", "needs_data", "needs_review")
        assert out["missing_fields"] == sorted(out["missing_fields"])
        assert decision.explain("zh") and decision.explain("en")

    run()
