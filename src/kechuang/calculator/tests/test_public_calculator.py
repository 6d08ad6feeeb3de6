"""The public calculator: a visitor's figures in, the same explanation out, nothing stored."""

from __future__ import annotations

import datetime as dt

from kechuang.calculator.services import calculator_try
from kechuang.registry.models import Enterprise
from kechuang.rules import evaluate

FACTS = {
    "certifications": {"little_giant_valid": True, "little_giant_issue_date": "2024-11-15"},
    "in_serious_dishonesty_list": False,
}


def test_the_form_gives_the_same_decision_as_evaluate(client, db):
    response = client.post(
        "/calculator/try/district_little_giant_match/",
        {
            "as_of": "2025-06-30",
            "little_giant_valid": "true",
            "little_giant_certificate_issue_date": "2024-11-15",
            "in_serious_dishonesty_list": "false",
        },
    )
    assert response.status_code == 200
    check = response.context["check"]
    expected = evaluate("district_little_giant_match", FACTS, "2025-06-30").to_dict()
    assert check.decision.to_dict() == expected
    page = response.content.decode()
    assert "符合" in page and check.benefit_text in page
    assert Enterprise.objects.count() == 0


def test_empty_fields_are_unknown_and_named(client, db):
    response = client.post("/calculator/try/district_little_giant_match/", {"as_of": "2025-06-30"})
    check = response.context["check"]
    assert check.verdict == "needs_data"
    assert [m.path for m in check.missing] == [
        "certifications.little_giant_valid",
        "in_serious_dishonesty_list",
    ]


def test_fiscal_year_fields_follow_the_as_of_date(client, db):
    response = client.post(
        "/calculator/try/tsme/", {"as_of": "2025-06-30", "fy1_sales_revenue": "1000000"}
    )
    decision = response.context["check"].decision
    assert decision.evaluation.row["fy1_sales_revenue"] == 1000000
    assert "financials.2024.sales_revenue" not in decision.missing_fields
    assert "financials.2024.rd_expense" in decision.missing_fields


def test_a_bad_number_is_a_form_error_not_a_decision(client, db):
    response = client.post(
        "/calculator/try/tsme/", {"as_of": "2025-06-30", "fy1_sales_revenue": "lots"}
    )
    assert response.context["check"] is None
    assert response.context["form"].errors["fy1_sales_revenue"]


def test_an_amount_of_26_digits_is_decided_and_shown_exactly_not_a_server_error(client, db):
    huge = "99999999999999999999999999.5"
    r = client.post("/calculator/try/hte/", {"as_of": "2025-06-30", "fy1_sales_revenue": huge})
    assert r.status_code == 200
    assert huge in r.content.decode()  # not rounded to 28 digits


def test_text_inputs_offer_the_words_the_policy_accepts(client, db):
    page = client.get("/calculator/try/voucher/").content.decode()
    assert 'value="district_service_voucher"' in page


def test_the_api_try_endpoint_is_open_and_returns_the_decision(client, db):
    response = client.post(
        "/api/calculator/try/district_little_giant_match",
        {"as_of": "2025-06-30", "facts": FACTS},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json() == evaluate("district_little_giant_match", FACTS, "2025-06-30").to_dict()


def test_the_api_try_endpoint_names_malformed_facts(client, db):
    # One fact given twice, inside and beside "enterprise": refused, naming it.
    response = client.post(
        "/api/calculator/try/hte",
        {"facts": {"enterprise": {"registration_date": "2019-02-01"}, "registration_date": "2020-01-01"}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["extra"]["field"] == "registration_date"


def test_the_api_try_endpoint_reports_figures_that_name_no_year_as_invalid(client, db):
    response = client.post(
        "/api/calculator/try/hte",
        {"as_of": "2025-06-30", "facts": {"registration_date": "2010-01-01", "financials": [2024, 2023]}},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] == "needs_data"
    assert "financials.2024.sales_revenue" in body["invalid_fields"]


def test_the_api_try_endpoint_reports_a_value_of_the_wrong_type_as_invalid(client, db):
    # "maybe" for a yes/no fact is present but impossible (RULES.md 0.4): named, never guessed.
    response = client.post(
        "/api/calculator/try/district_little_giant_match",
        {
            "as_of": "2025-06-30",
            "facts": {
                **FACTS,
                "certifications": {"little_giant_valid": "maybe", "little_giant_issue_date": "2024-11-15"},
            },
        },
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] == "needs_data"
    assert "certifications.little_giant_valid" in body["invalid_fields"]


def test_the_api_try_endpoint_answers_404_for_an_unknown_policy(client, db):
    response = client.post(
        "/api/calculator/try/no_such_policy", {"facts": {}}, content_type="application/json"
    )
    assert response.status_code == 404


def test_calculator_try_refuses_an_unknown_policy_by_name():
    import pytest

    from kechuang.errors import KechuangError

    with pytest.raises(KechuangError) as exc:
        calculator_try(policy_id="nope", facts={}, as_of=dt.date(2025, 6, 30))
    assert exc.value.field == "policy_id"


def test_the_2022_split_is_entered_per_period_and_named_as_one_field(client, db):
    """RULES.md 4.6: the two periods of the 2022 split are typed separately; a missing
    period is reported as the split (rd_expense_expensed_by_period), as RULES.md names it."""
    form = {
        "as_of": "2023-05-31",
        "tax_year": "2022",
        "resident_enterprise": "true",
        "accounting_sound": "true",
        "audit_based_cit_collection": "true",
        "industry": "software",
        "is_registered_tsme_for_year": "false",
        "rd_expense_expensed": "4000000",
        "rd_expense_expensed_by_period_present": "true",
        "rd_expensed_2022_jan_sep": "2800000",
        "rd_expensed_2022_oct_dec": "1200000",
    }
    check = client.post("/calculator/try/rd_super_deduction/", form).context["check"]
    assert check.verdict == "eligible"
    assert check.decision.to_dict()["additional_deduction"] == 3300000

    del form["rd_expensed_2022_oct_dec"]
    check = client.post("/calculator/try/rd_super_deduction/", form).context["check"]
    assert check.verdict == "needs_data"
    assert [m.path for m in check.missing] == ["rd_expense_expensed_by_period"]


def test_a_date_before_the_policy_has_rules_is_refused_naming_as_of(client, db):
    # hte's rules start on 2016-01-01: an earlier date is refused, not answered with a
    # needs_data that names no missing input.
    response = client.post(
        "/api/calculator/try/hte",
        {"facts": {}, "as_of": "2015-06-30"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "2016-01-01" in response.content.decode()
    assert "as_of" in response.content.decode()
    ok = client.post(
        "/api/calculator/try/hte", {"facts": {}, "as_of": "2016-06-30"}, content_type="application/json"
    )
    assert ok.status_code == 200


def test_the_api_reads_and_answers_amounts_beyond_a_double_exactly(client, db):
    # ¥99,999,999,999,999.99 of 2019 R&D at 75 %: a binary float loses the last fen on the
    # way in (…999.98) and on the way out (…999.97 for the total).
    body = (
        '{"as_of": "2020-05-31", "facts": {"tax_year": 2019, "resident_enterprise": true,'
        ' "accounting_sound": true, "audit_based_cit_collection": true, "industry": "software",'
        ' "rd_expense_expensed": 99999999999999.99}}'
    )
    response = client.post("/api/calculator/try/rd_super_deduction", body, content_type="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    assert '"additional_deduction": 74999999999999.99' in text
    assert '"total_pre_tax_deduction": 174999999999999.98' in text


def test_a_criterion_that_does_not_apply_is_shown_as_such_on_the_page(client, db):
    response = client.post(
        "/calculator/try/voucher/",
        {
            "as_of": "2025-06-30",
            "scheme": "shanghai_municipal",
            "applicant_type": "enterprise",
            "registered_in_shanghai": "true",
            "is_tsme": "true",
            "order_date": "2025-06-30",
            "contract_amount": "100000",
            "service_provider_on_platform": "true",
            "service_category_eligible": "true",
            "voucher_used_this_year": "0",
        },
    )
    assert response.status_code == 200
    check = response.context["check"]
    assert check.verdict == "eligible"
    (team,) = [c for c in check.criteria if c.id == "team_applicant"]
    assert (team.badge, team.passed) == ("— 不适用", None)
    assert "— 不适用" in response.content.decode()
