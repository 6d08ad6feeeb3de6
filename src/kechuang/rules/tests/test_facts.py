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


def test_facts_that_are_not_an_object_are_an_error_either_way():
    for lenient in (False, True):
        with pytest.raises(MalformedFacts):
            flatten([{"financials": {}}], AS_OF, lenient=lenient)  # type: ignore[arg-type]
    with pytest.raises(MalformedFacts):
        evaluate("hte", [], AS_OF)  # type: ignore[arg-type]


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


SPLIT = "rd_expense_expensed_by_period"
PERIODS = {"2022-01-01..2022-09-30": 800000, "2022-10-01..2022-12-31": 200000}


@pytest.mark.parametrize(
    ("facts", "field", "columns"),
    [
        ({"ip": [1, 2]}, "ip", {"ip_class1_count", "ip_class2_count_unused", "ip_any_self_developed"}),
        ({"team": "three people"}, "team", {"team_core_members", "team_company_registered"}),
        ({"direct_qualification": []}, "direct_qualification", {"dq_provincial_rd_institution"}),
        ({"expert_scores": 5}, "expert_scores", {"expert_rd_org", "expert_tech_advancement"}),
        ({"conversions": []}, "conversions", {"fy1_conversions", "fy3_conversions"}),
        ({"financials": [2024]}, "financials", {"fy1_sales_revenue", "fy3_total_assets"}),
        ({"financials": {"2024": 5}}, "financials.2024", {"fy1_sales_revenue", "fy1_staff_total"}),
        ({SPLIT: [1, 2]}, SPLIT, {"rd_expensed_2022_jan_sep", "rd_expensed_2022_oct_dec"}),
        ({SPLIT: {**PERIODS, "Q4": 1}}, SPLIT, {"rd_expensed_2022_oct_dec"}),
    ],
)
def test_a_value_where_an_object_belongs_is_refused_for_sql_and_unreadable_in_process(
    facts, field, columns
):
    # The SQL engines' rows cannot say "present but impossible" for a whole object.
    with pytest.raises(MalformedFacts) as caught:
        flatten(facts, AS_OF)
    assert caught.value.field == field
    # In process every value read through it is malformed, never absent (RULES.md 0.4).
    row = flatten(facts, AS_OF, lenient=True)
    assert columns <= row[MALFORMED]
    assert all(row[c] is None for c in columns)


def test_null_or_an_empty_object_is_absent_not_malformed():
    # RULES.md 0.1, and 3.2 "an absent/empty direct_qualification object".
    for field in ("ip", "team", "direct_qualification", "expert_scores", "conversions", SPLIT):
        for value in (None, {}):
            row = flatten({field: value}, AS_OF, lenient=True)
            assert MALFORMED not in row, (field, value)


RD_2022_OTHERS = {
    "tax_year": 2022, "resident_enterprise": True, "accounting_sound": True,
    "audit_based_cit_collection": True, "industry": "software", "rd_expense_expensed": 1000000,
    "is_registered_tsme_for_year": False,
}  # fmt: skip


@pytest.mark.parametrize("split", [[800000, 200000], {"Q1-Q3": 800000, "Q4": 200000}, {**PERIODS, "x": 0}])
def test_a_malformed_2022_split_is_invalid_where_the_split_is_read(split):
    d = evaluate("rd_super_deduction", {**RD_2022_OTHERS, SPLIT: split}, AS_OF).to_dict()
    assert d["verdict"] == "needs_data"
    assert d["invalid_fields"] == [SPLIT]
    assert d["missing_fields"] == []
    assert d["additional_deduction"] is None
    good = evaluate("rd_super_deduction", {**RD_2022_OTHERS, SPLIT: PERIODS}, AS_OF).to_dict()
    assert good["verdict"] == "eligible" and good["additional_deduction"] == 800000 * 0.75 + 200000


@pytest.mark.parametrize(
    ("changes", "ratio"), [({"tax_year": 2018}, 0.75), ({"is_registered_tsme_for_year": True}, 1.0)]
)
def test_a_malformed_2022_split_is_ignored_where_no_rule_reads_it(changes, ratio):
    facts = {**RD_2022_OTHERS, **changes, SPLIT: {"Q4": 1}}
    d = evaluate("rd_super_deduction", facts, AS_OF).to_dict()
    assert (d["verdict"], d["ratio"], d["invalid_fields"]) == ("eligible", ratio, [])
    assert d["additional_deduction"] == ratio * 1000000


VOUCHER = {
    "scheme": "district_service_voucher", "applicant_type": "enterprise",
    "registered_in_shanghai": True, "is_tsme": True, "contract_amount": 160000,
    "voucher_used_this_year": 420000, "order_date": "2022-09-15",
    "service_provider_on_platform": True, "service_category_eligible": True,
}  # fmt: skip


def test_team_facts_as_text_matter_only_for_a_team():
    # RULES.md 5.6, with a team field no rule reads for an enterprise.
    d = evaluate("voucher", {**VOUCHER, "team": "n/a"}, AS_OF).to_dict()
    assert (d["verdict"], d["subsidy_amount"], d["invalid_fields"]) == ("eligible", 80000, [])
    team = evaluate("voucher", {**VOUCHER, "applicant_type": "startup_team", "team": "n/a"}, AS_OF)
    assert team.to_dict()["verdict"] == "needs_data"
    assert team.to_dict()["invalid_fields"] == [
        "team.company_registered", "team.core_members", "team.in_incubator_park_or_maker_space"
    ]


def test_financials_that_name_no_year_make_the_window_years_invalid_not_missing():
    d = evaluate("hte", {"registration_date": "2010-01-01", "financials": [2024]}, AS_OF).to_dict()
    assert d["verdict"] == "needs_data"
    assert "financials.2022.sales_revenue" in d["invalid_fields"]
    assert "financials.2024.staff_total" in d["invalid_fields"]
    assert not any(f.startswith("financials.") for f in d["missing_fields"])


def test_facts_wrapped_in_enterprise_are_the_same_facts():
    wrapped = evaluate("voucher", {"enterprise": VOUCHER, "id": "91310000000000000X"}, AS_OF)
    assert wrapped.to_dict() == evaluate("voucher", VOUCHER, AS_OF).to_dict()
    assert flatten({"enterprise": VOUCHER, "id": "e1"}, AS_OF)["entity_id"] == "e1"
    # One fact given twice, inside and beside: neither silently wins, unless they agree.
    with pytest.raises(MalformedFacts) as caught:
        flatten({"enterprise": VOUCHER, "scheme": "municipal_innovation_voucher"}, AS_OF)
    assert caught.value.field == "scheme"
    same = flatten({"enterprise": VOUCHER, "scheme": VOUCHER["scheme"]}, AS_OF)
    assert same == flatten(VOUCHER, AS_OF)


@pytest.mark.parametrize("text", ["90000000", "1E+5", "1e5", "-5", "0.5", "100.00", "-0"])
def test_number_text_that_is_a_json_number_is_read_as_that_number(text):
    assert flatten({"contract_amount": text}, AS_OF)["contract_amount"] == Decimal(text)


@pytest.mark.parametrize("text", ["１２３", "1_000", "+5", " 100 ", "007", "NaN", "Infinity", "1,000", ""])
def test_number_text_that_is_no_json_number_is_invalid_not_read(text):
    row = flatten({"contract_amount": text}, AS_OF, lenient=True)
    assert row["contract_amount"] is None and row[MALFORMED] == {"contract_amount"}


@pytest.mark.parametrize(
    ("text", "valid"),
    [("2021-03-01", True), ("2024-02-29", True), ("2021-02-30", False), ("20210301", False),
     ("2021-W10-1", False), (" 2021-03-01", False), ("2021-3-1", False), ("2021/03/01", False)],
)  # fmt: skip
def test_a_date_is_the_iso_calendar_date_yyyy_mm_dd_and_nothing_else(text, valid):
    row = flatten({"registration_date": text}, AS_OF)
    assert row["registration_date_invalid"] is (not valid)
    assert (row["registration_date"] is not None) is valid


@pytest.mark.parametrize("value", ["1e999999999", "-1E-999999999", Decimal("1E+31"), 10**31, "1e-31"])
def test_a_number_beyond_any_amount_count_or_share_is_invalid_not_computed(value):
    # Exact arithmetic on 1e999999999 would build an integer of a billion digits.
    row = flatten({"contract_amount": value, "tax_year": value}, AS_OF, lenient=True)
    assert row[MALFORMED] == {"contract_amount", "tax_year"}
    d = evaluate("rd_super_deduction", {"tax_year": value, "rd_expense_expensed": value}, AS_OF)
    assert {"tax_year", "rd_expense_expensed"} <= set(d.to_dict()["invalid_fields"])


def test_the_largest_and_smallest_numbers_still_read():
    row = flatten({"contract_amount": "1e30", "manufacturing_revenue_share": "1e-30"}, AS_OF, lenient=True)
    assert row["contract_amount"] == Decimal("1e30") and MALFORMED not in row


@pytest.mark.parametrize("as_of", ["20250630", "2025-W26-1", " 2025-06-30", "2025-06-31", 20250630])
def test_as_of_is_an_iso_calendar_date(as_of):
    with pytest.raises(MalformedFacts) as caught:
        evaluate("voucher", VOUCHER, as_of)
    assert caught.value.field == "as_of"
