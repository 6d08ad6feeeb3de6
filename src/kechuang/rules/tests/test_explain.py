"""Explaining one decision: the smallest change that meets a failing criterion, and how
criteria of each role (requirement, exclusion, classification) read."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest

from kechuang.rules import evaluate
from kechuang.rules.explain.render import render_text

AS_OF = dt.date(2025, 6, 30)

#: Three window years; R&D 4,400,000 over sales 150,000,000 (2.93 %), last-year sales
#: 60,000,000, so the 4 % tier applies (32号 第十一条(五)2): 1,600,000 short.
HTE = {
    "registration_date": "2019-03-01",
    "registered_in_mainland": True,
    "resident_enterprise": True,
    "tech_field_supported": True,
    "major_incident_within_365d": False,
    "ip": {"class1_count": 1, "class2_count_unused": 0, "any_self_developed": True},
    "financials": {
        "2022": {"sales_revenue": 40000000, "rd_expense": 1200000, "rd_expense_domestic": 1200000,
                 "total_assets": 30000000, "total_liabilities": 10000000},
        "2023": {"sales_revenue": 50000000, "rd_expense": 1500000, "rd_expense_domestic": 1500000,
                 "total_assets": 35000000, "total_liabilities": 11000000},
        "2024": {"sales_revenue": 60000000, "rd_expense": 1700000, "rd_expense_domestic": 1700000,
                 "total_assets": 40000000, "total_liabilities": 12000000,
                 "total_income": 61000000, "high_tech_income": 40000000,
                 "staff_total": 100, "staff_sci_tech": 15},
    },
    "conversions": {"2022": 2, "2023": 2, "2024": 3},
}  # fmt: skip


def criterion(decision, name: str):
    (found,) = [c for c in decision.evaluation.criteria if c.name == name]
    return found


def with_more_rd(facts: dict, extra: Decimal) -> dict:
    """The facts with ``extra`` more R&D (all of it in China) in the last window year."""
    changed = copy.deepcopy(facts)
    year = changed["financials"]["2024"]
    year["rd_expense"] = Decimal(year["rd_expense"]) + extra
    year["rd_expense_domestic"] = Decimal(year["rd_expense_domestic"]) + extra
    return changed


def test_the_rd_ratio_below_its_tier_names_the_rd_expense_short_over_the_window():
    decision = evaluate("hte", HTE, AS_OF)
    rd = criterion(decision, "rd_ratio_meets_tier")
    assert rd.outcome is False
    (change,) = rd.flip["changes"]
    assert change["subject"] == "rd_sum" and change["direction"] == "increase"
    assert change["by"] == 1600000
    assert change["text_zh"] == "近三个会计年度研究开发费用总额（元）：需增加至少 1,600,000.00"
    assert change["text_en"].startswith("R&D expense over the window years")
    assert "at least 1,600,000.00" in change["text_en"]
    assert "→ 近三个会计年度研究开发费用总额（元）：需增加至少 1,600,000.00" in render_text(
        decision.evaluation, "zh"
    )


@pytest.mark.parametrize(
    ("sales_2024", "gap"),
    [
        # 4 % of 150,000,000.10 is 6,000,000.004: a change in whole fen must reach 0.01 more.
        (Decimal("60000000.10"), Decimal("1600000.01")),
        (Decimal("60000000"), Decimal("1600000.00")),
        (Decimal("60000024.99"), Decimal("1600001.00")),
    ],
)
def test_the_smallest_change_is_in_whole_fen_and_exactly_enough(sales_2024, gap):
    facts = copy.deepcopy(HTE)
    facts["financials"]["2024"]["sales_revenue"] = sales_2024
    (change,) = criterion(evaluate("hte", facts, AS_OF), "rd_ratio_meets_tier").flip["changes"]
    assert Decimal(str(change["by"])) == gap
    assert change["strict"] is False
    # Enough, and one fen less is not: the change is the smallest.
    enough = evaluate("hte", with_more_rd(facts, gap), AS_OF)
    assert criterion(enough, "rd_ratio_meets_tier").outcome is True
    short = evaluate("hte", with_more_rd(facts, gap - Decimal("0.01")), AS_OF)
    assert criterion(short, "rd_ratio_meets_tier").outcome is False


def test_no_change_is_offered_where_none_can_be_computed():
    facts = copy.deepcopy(HTE)
    for year in facts["financials"].values():
        year["sales_revenue"] = 0  # no sales: the share cannot be shown to be met
    rd = criterion(evaluate("hte", facts, AS_OF), "rd_ratio_meets_tier")
    assert rd.outcome is False and rd.flip is None


RD = {
    "tax_year": 2021,
    "resident_enterprise": True,
    "accounting_sound": True,
    "audit_based_cit_collection": True,
    "industry": "software",
    "rd_expense_expensed": 1000000,
}


def test_an_exclusion_that_does_not_apply_is_shown_as_passed_not_failed():
    decision = evaluate("rd_super_deduction", RD, dt.date(2022, 5, 31))
    excluded = criterion(decision, "negative_list_excluded")
    assert decision.verdict == "eligible"
    assert (excluded.outcome, excluded.passed, excluded.flip) == (False, True, None)
    text = render_text(decision.evaluation, "en")
    assert "✓ in a negative-list industry" in text and "does not apply" in text
    trace = decision.to_dict()["trace"]["criteria"]
    (row,) = [c for c in trace if c["id"] == "negative_list_excluded"]
    assert (row["role"], row["outcome"], row["passed"]) == ("exclusion", False, True)


def test_an_exclusion_that_applies_fails_and_offers_no_way_to_be_more_excluded():
    facts = {**RD, "industry": "wholesale_retail", "negative_list_revenue_share": 0.6}
    decision = evaluate("rd_super_deduction", facts, dt.date(2022, 5, 31))
    excluded = criterion(decision, "negative_list_excluded")
    assert decision.verdict == "ineligible"
    assert (excluded.outcome, excluded.passed, excluded.flip) == (True, False, None)
    assert "✗ 属于不适用加计扣除的行业" in render_text(decision.evaluation, "zh")


def test_a_classification_neither_passes_nor_fails():
    decision = evaluate("rd_super_deduction", RD, dt.date(2022, 5, 31))
    group = criterion(decision, "manufacturing_enterprise")
    assert (group.outcome, group.passed, group.flip) == (False, None, None)
    assert "· manufacturing enterprise" in render_text(decision.evaluation, "en")


def test_a_date_short_of_its_bound_is_given_as_the_date_to_reach():
    facts = {
        "certifications": {"hte_valid": True, "hte_first_issue_date": "2023-11-01"},
        "in_serious_dishonesty_list": False,
    }
    decision = evaluate("district_hte_first_reward", facts, dt.date(2025, 6, 30))
    recent = criterion(decision, "first_recognition_recent")
    assert recent.outcome is False
    (change,) = recent.flip["changes"]
    assert change["bound"] == "2024-01-01"
    assert change["text_en"].endswith("would need to be on or after 2024-01-01")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_dates_read_as_dates_in_the_text_the_as_of_date_and_a_derived_one_too(lang):
    facts = {
        "certifications": {"hte_valid": True, "hte_first_issue_date": "2023-11-01"},
        "in_serious_dishonesty_list": False,
    }
    text = evaluate("district_hte_first_reward", facts, dt.date(2025, 6, 30)).explain(lang)
    assert "(hte_first_certificate_issue_date) = 2023-11-01" in text
    assert "as_of = 2025-06-30" in text
    assert "window_start_date = 2024-01-01" in text
    assert "20,250,630" not in text and "20,240,101" not in text


VOUCHER = {
    "scheme": "district_service_voucher",
    "applicant_type": "enterprise",
    "registered_in_shanghai": True,
    "is_tsme": True,
    "order_date": "2022-09-15",
    "contract_amount": 160000,
    "service_provider_on_platform": True,
    "service_category_eligible": True,
    "voucher_used_this_year": 420000,
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_text_gives_the_benefit_and_every_output(lang):
    # RULES.md 5.6: 75 % of 160,000 capped by the 80,000 left of the annual cap.
    text = evaluate("voucher", VOUCHER, dt.date(2022, 9, 15)).explain(lang)
    for line in ("(ratio): 0.75", "(annual_cap): 500,000.00", "(remaining_cap_before): 80,000.00",
                 "(subsidy_amount): 80,000.00", "(enterprise_pays): 80,000.00"):
        assert line in text, text
    assert ("补贴金额（元） (subsidy_amount)" if lang == "zh" else "subsidy amount (yuan) (subsidy_amount)") in text
    assert ("是" if lang == "zh" else "yes") in text
    assert "None" not in text


def test_hte_scope_failure_is_visible_beside_the_verdict():
    facts = {**copy.deepcopy(HTE), "resident_enterprise": False}
    text = evaluate("hte", facts, AS_OF).explain("en")
    assert "Verdict: ineligible" in text
    assert "resident enterprise (scope_conditions.resident_enterprise): no" in text


def test_values_read_exactly_and_an_invalid_one_is_shown_as_given():
    # One fen over the 2亿 size limit must not read as equal to it.
    facts = {"financials": {"2024": {"sales_revenue": Decimal("200000000.01"), "staff_total": 0}}}
    text = evaluate("tsme", facts, AS_OF).explain("zh")
    assert "= 200,000,000.01" in text
    assert "(fy1_staff_total) = 0（无效）" in text
    text = evaluate("tsme", {"financials": {"2024": {"sales_revenue": "abc"}}}, AS_OF).explain("en")
    assert "(fy1_sales_revenue) = — (invalid)" in text
    assert "(tax_year) = 2022" in evaluate("rd_super_deduction", {"tax_year": 2022}, AS_OF).explain("en")
    # A share a hair over the exclusive 50 % bound reads as such.
    rd = {"tax_year": 2022, "resident_enterprise": True, "accounting_sound": True,
          "audit_based_cit_collection": True, "industry": "wholesale_retail",
          "negative_list_revenue_share": Decimal("0.5000001"), "rd_expense_expensed": 1000}
    text = evaluate("rd_super_deduction", rd, AS_OF).explain("en")
    assert "(negative_list_revenue_share) = 0.5000001 (50.00001%)" in text


def test_a_parameter_shows_its_period_and_no_empty_placeholders():
    text = evaluate("rd_super_deduction", {"tax_year": 2021, "industry": "manufacturing"}, AS_OF).explain("en")
    assert "since 2021-01-01 until 2022-12-31" in text
    assert "(since —" not in text and "None" not in text


def test_a_criterion_that_does_not_apply_reads_as_such_not_as_unknown():
    decision = evaluate("voucher", VOUCHER, dt.date(2022, 9, 15))
    team = criterion(decision, "team_applicant")
    assert (team.applies, team.passed, team.flip) == (False, None, None)
    (row,) = [c for c in decision.to_dict()["trace"]["criteria"] if c["id"] == "team_applicant"]
    assert (row["applies"], row["passed"]) == (False, None)
    assert "— 创业团队：未注册公司、入驻孵化载体、核心成员不少于3人" in decision.explain("zh")
    assert "not applicable" in decision.explain("en")
    # With the applicant type unknown, both tests stand, unknown as they are.
    unknown = {k: v for k, v in VOUCHER.items() if k != "applicant_type"}
    assert criterion(evaluate("voucher", unknown, dt.date(2022, 9, 15)), "team_applicant").applies


def test_the_negative_list_does_not_apply_before_2016():
    facts = {**RD, "tax_year": 2012, "industry": "wholesale_retail"}
    decision = evaluate("rd_super_deduction", facts, dt.date(2013, 5, 31))
    assert decision.verdict == "eligible"
    assert criterion(decision, "negative_list_excluded").applies is False
    assert criterion(decision, "manufacturing_enterprise").applies is False
