"""The flat facts row built by one SQL SELECT equals the row computed in Python."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from kechuang.registry import codes
from kechuang.registry.demo import demo_build
from kechuang.registry.facts import COLUMNS, windows
from kechuang.registry.models import Certification, Enterprise, FiscalYear, IPAsset
from kechuang.registry.selectors import (
    enterprise_facts_as_of,
    enterprise_facts_rows,
    enterprise_nested_facts,
)
from kechuang.rules.facts import FLAT_COLUMNS, flatten
from kechuang.testing import credit_code

AS_OF = dt.date(2025, 6, 30)
FY_FIELDS = (
    "sales_revenue",
    "rd_expense",
    "rd_expense_domestic",
    "total_assets",
    "total_liabilities",
    "total_income",
    "high_tech_income",
    "total_cost_expense",
    "staff_total",
    "staff_sci_tech",
)


def yyyymmdd(d: dt.date | None) -> int | None:
    return None if d is None else int(d.strftime("%Y%m%d"))


def reference_row(e: Enterprise, as_of: dt.date) -> dict:
    """The flat row computed straight from the model objects, column by column."""
    w = windows()
    row = dict.fromkeys(COLUMNS)
    row.update(
        entity_id=e.credit_code,
        as_of=yyyymmdd(as_of),
        registration_date=yyyymmdd(e.registration_date),
        registration_date_invalid=False,
        dq_hte_certificate_issue_date_invalid=False,
        order_date_invalid=False,
        rd_expense_expensed_by_period_present=False,
    )
    if e.registration_date:
        row["registration_year"] = e.registration_date.year
        row["days_since_registration"] = (as_of - e.registration_date).days
    for name in (
        "registered_in_mainland",
        "resident_enterprise",
        "tech_field_supported",
        "accounting_sound",
        "audit_based_cit_collection",
        "industry_restricted_or_eliminated",
        "is_ic_or_machine_tool_enterprise",
        "registered_in_shanghai",
    ):
        row[name] = getattr(e, name)
    row["industry"] = codes.industry_label(e.industry_code) if e.industry_code else None
    has_standard = any(s.published_on <= as_of for s in e.standards.all())
    row["standards_participation"] = True if has_standard else e.standards_participation

    def known(found: bool) -> bool | None:
        return True if found else (False if e.compliance_checked else None)

    incidents = list(e.incidents.all())
    row["major_incident_within_365d"] = known(
        any(
            i.kind in w["major_incident_kinds"] and 0 <= (as_of - i.occurred_on).days <= 365
            for i in incidents
        )
    )
    row["incident_or_misconduct_last_or_current_year"] = known(
        any(i.occurred_on <= as_of and i.occurred_on.year >= as_of.year - 1 for i in incidents)
    )
    for column, kind in (
        ("in_abnormal_operations_list", "abnormal_operations"),
        ("in_serious_dishonesty_list", "serious_dishonesty"),
    ):
        row[column] = known(
            any(
                x.kind == kind
                and x.listed_on <= as_of
                and not (x.removed_on and x.removed_on <= as_of)
                for x in e.list_entries.all()
            )
        )

    if e.ip_surveyed:

        def counts(ip: IPAsset) -> bool:
            if ip.grant_date is None or ip.grant_date > as_of:
                return False
            if ip.status == "valid":
                return ip.expiry_date is None or ip.expiry_date >= as_of
            return (
                ip.status in ("expired", "lapsed")
                and bool(ip.expiry_date)
                and ip.expiry_date >= as_of
            )

        valid = [ip for ip in e.ip_assets.all() if counts(ip)]
        c1 = [ip for ip in valid if ip.ip_class == "I"]
        c2 = [ip for ip in valid if ip.ip_class == "II"]
        unused = [ip for ip in c2 if not ip.used_in_earlier_hte_application]
        row["ip_class1_count"] = len(c1)
        row["ip_class2_count_unused"] = len(unused)
        row["ip_class2_count_used_before"] = len(c2) - len(unused)
        row["ip_class2_count"] = len(c2)
        flags = {ip.self_developed for ip in c1 + unused}
        row["ip_any_self_developed"] = True if True in flags else (None if None in flags else False)

    certs = [
        c
        for c in e.certifications.all()
        if c.valid_from <= as_of and (c.valid_to is None or c.valid_to >= as_of)
    ]
    hte = [c.valid_from for c in certs if c.kind == "hte"]
    row["dq_hte_certificate_issue_date"] = yyyymmdd(max(hte)) if hte else None
    row["is_tsme"] = any(c.kind == "tsme" for c in certs)
    five_years = as_of.replace(year=as_of.year - 5)
    row["dq_national_sci_award_top3_within_5y"] = any(
        a.kind == "national_sci_award"
        and a.unit_rank
        and a.unit_rank <= 3
        and five_years <= a.awarded_on <= as_of
        for a in e.awards.all()
    )
    row["dq_provincial_rd_institution"] = any(
        r.level in ("national", "provincial")
        and r.recognized_on <= as_of
        and (r.revoked_on is None or r.revoked_on > as_of)
        for r in e.rd_institutions.all()
    )
    row["dq_led_standard_within_5y"] = any(
        s.role == "led"
        and s.level in ("international", "national", "industry")
        and five_years <= s.published_on <= as_of
        for s in e.standards.all()
    )
    # 免申即享 district columns: certificates and 上海市科学技术奖 awards.
    row["hte_valid"] = bool(hte)
    issued = [c.valid_from for c in e.certifications.all() if c.kind == "hte"]
    issued = [d for d in issued if d <= as_of]
    row["hte_first_certificate_issue_date"] = yyyymmdd(min(issued)) if issued else None
    row["hte_first_certificate_issue_date_invalid"] = False
    giant = [c.valid_from for c in certs if c.kind == "little_giant"]
    row["little_giant_valid"] = bool(giant)
    row["little_giant_certificate_issue_date"] = yyyymmdd(max(giant)) if giant else None
    row["little_giant_certificate_issue_date_invalid"] = False
    grade = {"特等奖": "special", "一等奖": "first", "二等奖": "second", "三等奖": "third"}
    won = [a for a in e.awards.all() if a.kind == "shanghai_sci_award" and a.awarded_on <= as_of]
    row["sh_sci_award_count"] = len(won)
    if won:
        latest = max(a.awarded_on.year for a in won)
        ranked = sorted(
            (a for a in won if a.awarded_on.year == latest),
            key=lambda a: (
                list(grade).index(a.grade) if a.grade in grade else 9,
                a.unit_rank or 99,
            ),
        )
        row["sh_sci_award_year"] = latest
        row["sh_sci_award_grade"] = grade.get(ranked[0].grade)
        row["sh_sci_award_unit_rank"] = ranked[0].unit_rank
    years = {fy.year: fy for fy in e.fiscal_years.all()}
    for k in (1, 2, 3):
        fy = years.get(as_of.year - k)
        row[f"fy{k}_present"] = fy is not None
        for field in FY_FIELDS:
            row[f"fy{k}_{field}"] = getattr(fy, field) if fy else None
        row[f"fy{k}_conversions"] = fy.conversions if fy else None
    return row


@pytest.fixture
def demo_district(db) -> list[Enterprise]:
    demo_build(count=250)
    return list(Enterprise.objects.order_by("credit_code"))


def test_the_facts_row_has_exactly_the_columns_of_the_contract():
    assert list(COLUMNS) == [c.name for c in FLAT_COLUMNS]


def test_the_sql_row_equals_the_python_reference_for_a_handful_of_demo_enterprises(
    demo_district,
):
    rows = {r["entity_id"]: r for r in enterprise_facts_rows(as_of=AS_OF)}
    assert len(rows) == len(demo_district)
    # A handful that between them cover the interesting cases: unknown
    # registration date, no IP survey, a valid 高企 certificate, an incident or
    # a list entry, a missing fiscal year, figures left blank.
    picks = {
        "no registration date": [e for e in demo_district if e.registration_date is None],
        "no IP survey": [e for e in demo_district if not e.ip_surveyed],
        "IP surveyed": [e for e in demo_district if e.ip_surveyed and e.ip_assets.exists()],
        "高企": [e for e in demo_district if e.certifications.filter(kind="hte").exists()],
        "小巨人": [
            e for e in demo_district if e.certifications.filter(kind="little_giant").exists()
        ],
        "市科技奖": [
            e for e in demo_district if e.awards.filter(kind="shanghai_sci_award").exists()
        ],
        "incident": [e for e in demo_district if e.incidents.exists()],
        "list entry": [e for e in demo_district if e.list_entries.exists()],
        "blank figures": [
            e for e in demo_district if e.fiscal_years.filter(staff_sci_tech__isnull=True).exists()
        ],
    }
    for case, enterprises in picks.items():
        assert enterprises, f"the demo district has no enterprise with {case}"
        for e in enterprises[:3]:
            assert rows[e.credit_code] == reference_row(e, AS_OF), case


def test_the_sql_row_equals_flatten_of_the_nested_facts_for_every_demo_enterprise(
    demo_district,
):
    as_of = dt.date(2024, 3, 15)
    rows = {r["entity_id"]: r for r in enterprise_facts_rows(as_of=as_of)}
    for e in demo_district:
        assert rows[e.credit_code] == flatten(enterprise_nested_facts(e, as_of), as_of)


def test_an_enterprise_without_an_ip_survey_has_unknown_ip_counts_not_zero(db):
    e = Enterprise.objects.create(credit_code=credit_code("91310107MA1G00010"), name="甲")
    (row,) = enterprise_facts_rows(as_of=AS_OF, enterprise_ids=[e.id])
    assert row["ip_class1_count"] is None and row["ip_any_self_developed"] is None
    e.ip_surveyed = True
    e.save()
    (row,) = enterprise_facts_rows(as_of=AS_OF, enterprise_ids=[e.id])
    assert row["ip_class1_count"] == 0 and row["ip_any_self_developed"] is False


def test_a_year_without_a_record_is_absent_and_its_figures_stay_null(db):
    e = Enterprise.objects.create(credit_code=credit_code("91310107MA1G00011"), name="乙")
    FiscalYear.objects.create(enterprise=e, year=2024, sales_revenue=Decimal("0"))
    (row,) = enterprise_facts_rows(as_of=AS_OF, enterprise_ids=[e.id])
    assert row["fy1_present"] is True and row["fy1_sales_revenue"] == Decimal("0.00")
    assert row["fy1_rd_expense"] is None
    assert row["fy2_present"] is False and row["fy2_sales_revenue"] is None


def test_days_since_registration_counts_calendar_days_on_both_engines(db):
    e = Enterprise.objects.create(
        credit_code=credit_code("91310107MA1G00012"),
        name="丙",
        registration_date=dt.date(2021, 3, 1),
    )
    (row,) = enterprise_facts_rows(as_of=dt.date(2022, 3, 1), enterprise_ids=[e.id])
    assert row["days_since_registration"] == 365
    assert row["registration_date"] == 20210301 and row["registration_year"] == 2021


def test_a_patent_that_lapsed_later_still_counts_on_an_earlier_date(db):
    e = Enterprise.objects.create(
        credit_code=credit_code("91310107MA1G00013"), name="丁", ip_surveyed=True
    )
    IPAsset.objects.create(
        enterprise=e,
        ip_type="invention_patent",
        number="ZL202010000001",
        status="lapsed",
        grant_date=dt.date(2021, 5, 1),
        expiry_date=dt.date(2024, 5, 1),
        self_developed=True,
    )
    (before,) = enterprise_facts_rows(as_of=dt.date(2024, 4, 30), enterprise_ids=[e.id])
    (after,) = enterprise_facts_rows(as_of=dt.date(2024, 5, 2), enterprise_ids=[e.id])
    assert before["ip_class1_count"] == 1 and before["ip_any_self_developed"] is True
    assert after["ip_class1_count"] == 0 and after["ip_any_self_developed"] is False


def test_a_high_tech_certificate_counts_only_while_valid(db):
    e = Enterprise.objects.create(credit_code=credit_code("91310107MA1G00014"), name="戊")
    Certification.objects.create(
        enterprise=e,
        kind="hte",
        number="GR202231000001",
        valid_from=dt.date(2022, 12, 14),
        valid_to=dt.date(2025, 12, 14),
    )
    (on,) = enterprise_facts_rows(as_of=dt.date(2025, 12, 14), enterprise_ids=[e.id])
    (off,) = enterprise_facts_rows(as_of=dt.date(2025, 12, 15), enterprise_ids=[e.id])
    assert on["dq_hte_certificate_issue_date"] == 20221214
    assert off["dq_hte_certificate_issue_date"] is None


def test_the_facts_sql_is_one_select_that_embeds_as_a_subquery(db):
    sql = enterprise_facts_as_of(as_of=AS_OF)
    assert sql.lstrip().upper().startswith("SELECT")
    assert ";" not in sql


def test_an_empty_list_of_enterprises_gives_no_rows(alice_corp):
    assert enterprise_facts_rows(as_of=AS_OF, enterprise_ids=[]) == []
