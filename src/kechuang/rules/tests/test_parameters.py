"""Dated parameters chosen per row (``select_by``): a value in force at every date is known
even when the selecting date is not; once the timeline changes, the date decides again."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from fractions import Fraction

import duckdb
import pytest

from kechuang.rules import evaluate, flatten, get_policy
from kechuang.rules.compile.to_sql import compile_sql
from kechuang.rules.policy import TimelineEntry
from kechuang.rules.runners.arrow import rows_to_arrow
from kechuang.rules.runners.duckdb_runner import fetch

AS_OF = dt.date(2026, 3, 1)
MUNICIPAL = {
    "scheme": "shanghai_municipal",
    "applicant_type": "enterprise",
    "registered_in_shanghai": True,
    "is_tsme": True,
    "contract_amount": 100000,
    "service_provider_on_platform": True,
    "service_category_eligible": True,
    "voucher_used_this_year": 0,
}


def with_new_ratio_from(day: dt.date):
    """The voucher policy with the municipal ratio raised to 0.60 from ``day``, as a
    publication layers it onto the file's timeline."""
    policy = get_policy("voucher")
    param = policy.parameters["municipal_ratio"]
    (always,) = param.entries
    entries = (
        replace(always, end=day - dt.timedelta(days=1)),
        TimelineEntry(day, None, Fraction(6, 10), "published", None),
    )
    params = {**policy.parameters, "municipal_ratio": replace(param, entries=entries)}
    return replace(policy, parameters=params)


def on_duckdb(policy, facts: dict) -> dict:
    con = duckdb.connect()
    con.register("facts_table", rows_to_arrow([flatten(facts, AS_OF)]))
    return fetch(con, compile_sql(policy, AS_OF, "duckdb", table="facts_table"))[0]


@pytest.mark.parametrize("engine", ["in process", "duckdb"])
def test_a_ratio_in_force_at_every_date_is_known_without_the_order_date(engine):
    policy = get_policy("voucher")
    result = (
        evaluate(policy, MUNICIPAL, AS_OF).to_dict() if engine == "in process"
        else on_duckdb(policy, MUNICIPAL)
    )
    assert result["verdict"] == "needs_data" and result["ratio"] == 0.5
    assert result["subsidy_amount"] is None


@pytest.mark.parametrize("engine", ["in process", "duckdb"])
def test_once_the_ratio_changes_the_order_date_decides_it(engine):
    policy = with_new_ratio_from(dt.date(2026, 1, 1))

    def ratio(facts: dict):
        if engine == "in process":
            return evaluate(policy, facts, AS_OF).to_dict()["ratio"]
        return on_duckdb(policy, facts)["ratio"]

    # An order of 2025 keeps 0.50 although the evaluation date is after the change.
    assert ratio({**MUNICIPAL, "order_date": "2025-06-01"}) == 0.5
    assert ratio({**MUNICIPAL, "order_date": "2026-01-01"}) == 0.6
    assert ratio(MUNICIPAL) is None  # now it depends on the unknown date


@pytest.mark.parametrize("run", ["evaluate", "compile"])
def test_a_day_before_the_rules_start_is_refused_not_decided(run):
    # hte's parameters start on 2016-01-01 (the 2016 办法): earlier, both paths refuse the
    # date instead of answering needs_data with no input named (RULES.md 0.2).
    from kechuang.rules.errors import NotInForce

    def go(day: dt.date):
        if run == "evaluate":
            return evaluate("hte", {}, day).verdict
        return compile_sql(get_policy("hte"), day, "duckdb").sql

    with pytest.raises(NotInForce) as caught:
        go(dt.date(2015, 12, 31))
    assert "min_days_registered" in str(caught.value) and "2016-01-01" in str(caught.value)
    assert go(dt.date(2016, 1, 1))


def test_a_parameter_chosen_per_row_may_still_be_unknown_by_design():
    # rd's 2022 Q4 ratio is chosen by tax year: other years simply have none.
    decision = evaluate(
        "rd_super_deduction",
        {"tax_year": 2019, "resident_enterprise": True, "accounting_sound": True,
         "audit_based_cit_collection": True, "industry": "software", "rd_expense_expensed": 100},
        dt.date(2020, 5, 31),
    )
    assert decision.verdict == "eligible"
