"""Flattening nested facts: what the SQL engines can store, and what evaluate() reports."""

import datetime as dt
from decimal import Decimal

import pytest

from kechuang.rules import evaluate
from kechuang.rules.cases import load_cases
from kechuang.rules.errors import MalformedFacts
from kechuang.rules.facts import MALFORMED, flatten

AS_OF = dt.date(2025, 6, 30)


def test_an_amount_in_fractions_of_a_fen_is_refused_for_sql_and_kept_exact_in_process():
    with pytest.raises(MalformedFacts) as caught:
        flatten({"contract_amount": "100.005"}, AS_OF)
    assert caught.value.field == "contract_amount"
    assert flatten({"contract_amount": "100.005"}, AS_OF, lenient=True)["contract_amount"] == Decimal(
        "100.005"
    )
    # Trailing zeros are not places: 1.50 fits two decimals.
    assert flatten({"contract_amount": "1.500"}, AS_OF)["contract_amount"] == Decimal("1.5")


@pytest.mark.parametrize(
    ("facts", "column", "path"),
    [
        ({"team": {"core_members": 2.5}}, "team_core_members", "team.core_members"),
        ({"is_tsme": "yes"}, "is_tsme", "is_tsme"),
        ({"financials": {"2024": {"sales_revenue": "abc"}}}, "fy1_sales_revenue", "financials.2024.sales_revenue"),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_for_sql_and_invalid_in_process(facts, column, path):
    with pytest.raises(MalformedFacts) as caught:
        flatten(facts, AS_OF)
    assert caught.value.field == path
    row = flatten(facts, AS_OF, lenient=True)
    assert row[column] is None
    assert row[MALFORMED] == {column}


def test_facts_that_are_not_of_the_nested_form_are_an_error_either_way():
    for lenient in (False, True):
        with pytest.raises(MalformedFacts):
            flatten({"financials": [2024]}, AS_OF, lenient=lenient)
    with pytest.raises(MalformedFacts):
        evaluate("hte", {"financials": [2024]}, AS_OF)


def test_only_cases_about_values_sql_cannot_store_are_kept_from_the_sql_engines():
    # The differential tests run every case that fits the flat row on every engine; the
    # others must be exactly the cases written about such values, not silently more.
    kept_out = [c for c in load_cases() if not c.runs_on_sql]
    assert kept_out and any(c.beyond_sql_range for c in kept_out)
    for case in kept_out:
        about_such_values = "not an error" in case.name or "fractions of a fen" in case.name
        assert about_such_values or case.beyond_sql_range, case.name


@pytest.mark.parametrize("runner", ["duckdb", "sqlite"])
def test_the_sql_runners_refuse_a_row_with_values_of_the_wrong_type(runner):
    # Such a value is NULL in a lenient row: an engine would call it missing, not invalid.
    from kechuang.rules.runners import duckdb_runner, sqlite_runner

    run_rows = {"duckdb": duckdb_runner.run_rows, "sqlite": sqlite_runner.run_rows}[runner]
    row = flatten({"team": {"core_members": 2.5}}, AS_OF, lenient=True)
    with pytest.raises(MalformedFacts) as caught:
        run_rows("voucher", [row], AS_OF)
    assert caught.value.field == "team.core_members"


@pytest.mark.parametrize(
    ("facts", "field"),
    [
        ({"ip": [1, 2]}, "ip"),
        ({"team": "three people"}, "team"),
        ({"direct_qualification": []}, "direct_qualification"),
        ({"expert_scores": 5}, "expert_scores"),
        ({"conversions": []}, "conversions"),
    ],
)
def test_a_value_where_an_object_belongs_is_refused_naming_it_not_read_as_absent(facts, field):
    with pytest.raises(MalformedFacts) as caught:
        flatten(facts, AS_OF, lenient=True)
    assert caught.value.field == field
    # null and {} are absent (RULES.md 0.1, 3.2 "an absent/empty direct_qualification object").
    assert flatten(dict.fromkeys(facts), AS_OF, lenient=True)["ip_class1_count"] is None
    assert flatten({field: {}}, AS_OF, lenient=True)["ip_class1_count"] is None
