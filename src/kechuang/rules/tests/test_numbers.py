"""Money beyond a float's 15–17 digits comes out exact (RULES.md 0.5: money outputs are exact)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from fractions import Fraction

from kechuang.rules import evaluate, flatten
from kechuang.rules.numbers import ExactFloat, decimal_places, dumps_exact, json_number
from kechuang.rules.runners import duckdb_runner

AS_OF = dt.date(2020, 5, 31)
# ¥99,999,999,999,999.99 of R&D in 2019 at 75 % (just below the ¥10^14 a compiled query
# takes, docs/policy-language.md): the additional deduction 74,999,999,999,999.99 and the
# total 174,999,999,999,999.98 have more digits than a double holds (their nearest doubles
# print as ...999.98 and ...999.97).
FACTS = {
    "tax_year": 2019,
    "resident_enterprise": True,
    "accounting_sound": True,
    "audit_based_cit_collection": True,
    "industry": "software",
    "rd_expense_expensed": Decimal("99999999999999.99"),
    "rd_intangible_cost": Decimal("99999999999999.99"),
}
ADDITIONAL = "74999999999999.99"
TOTAL = "174999999999999.98"


def test_a_huge_amount_with_fen_keeps_its_exact_decimal_in_to_dict_and_json() -> None:
    decision = evaluate("rd_super_deduction", FACTS, AS_OF)
    out = decision.to_dict()
    total = out["total_pre_tax_deduction"]
    assert isinstance(total, ExactFloat)
    assert str(total) == TOTAL and Decimal(repr(total)) == Decimal(TOTAL)
    # As a number it is what any JSON reader makes of the exact text.
    assert total == float(TOTAL) == json.loads(TOTAL)
    assert str(out["additional_deduction"]) == ADDITIONAL
    text = decision.to_json()
    assert f'"total_pre_tax_deduction": {TOTAL},' in text
    assert json.loads(text, parse_float=Decimal)["intangible_amortisation_base"] == Decimal(TOTAL)


def test_the_sql_path_gives_the_same_exact_amounts() -> None:
    (row,) = duckdb_runner.run_rows("rd_super_deduction", [flatten(FACTS, AS_OF)], AS_OF)
    assert str(row["additional_deduction"]) == ADDITIONAL
    assert str(row["total_pre_tax_deduction"]) == TOTAL


def test_ordinary_amounts_stay_plain_floats() -> None:
    assert type(json_number(Decimal("1600000.01"))) is float
    assert type(json_number(Decimal("0.000005"))) is float
    assert type(json_number(Decimal(TOTAL))) is ExactFloat


def test_dumps_exact_writes_only_exact_numbers_differently() -> None:
    value = {"a": ExactFloat(Decimal(TOTAL)), "b": [0.5, "x"], "c": None}
    assert dumps_exact(value) == f'{{"a": {TOTAL}, "b": [0.5, "x"], "c": null}}'


def test_decimal_places_tells_terminating_from_repeating() -> None:
    assert decimal_places(Fraction(1, 8)) == 3
    assert decimal_places(Fraction(7, 20)) == 2
    assert decimal_places(Fraction(10, 3)) is None
