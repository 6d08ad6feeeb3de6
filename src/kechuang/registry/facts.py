"""The flat facts row (docs/facts-row.md) as ONE SQL SELECT over the registry.

The calculator runs compiled policies over this query inside the app database
(SQLite or PostgreSQL), so nothing here loops over enterprises in Python. The
generated SQL is self-contained: every value in it (the as-of date, the
enterprise ids, the windows of ``data/facts.yaml``) is a literal we produced
from a ``date`` or an ``int``, so it can be embedded as a subquery.

NULL means unknown. Where the registry's own completeness decides between 0
and unknown, the enterprise says so: ``ip_surveyed`` (the IP list is complete)
and ``compliance_checked`` (incidents and credit lists have been checked).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import yaml

from kechuang.registry import codes
from kechuang.registry.models import (
    Award,
    Certification,
    Enterprise,
    FiscalYear,
    Incident,
    IPAsset,
    ListEntry,
    RDInstitution,
    StandardLed,
)

#: fyK_* = fiscal year Y-K.
FISCAL_YEARS = (1, 2, 3)

FY_FIELDS: tuple[tuple[str, str], ...] = (
    ("sales_revenue", "money"),
    ("rd_expense", "money"),
    ("rd_expense_domestic", "money"),
    ("total_assets", "money"),
    ("total_liabilities", "money"),
    ("total_income", "money"),
    ("high_tech_income", "money"),
    ("total_cost_expense", "money"),
    ("staff_total", "number"),
    ("staff_sci_tech", "number"),
)


def _column_types() -> dict[str, str]:
    # The order and names of docs/facts-row.md (kechuang.rules.facts.FLAT_COLUMNS;
    # a test checks that both agree).
    cols: list[tuple[str, str]] = [("entity_id", "text"), ("as_of", "date")]
    for name in ("registration_date", "dq_hte_certificate_issue_date", "order_date"):
        cols += [(name, "date"), (f"{name}_invalid", "bool")]
    cols += [("registration_year", "count"), ("days_since_registration", "count")]
    cols += [
        ("registered_in_mainland", "bool"),
        ("resident_enterprise", "bool"),
        ("tech_field_supported", "bool"),
        ("major_incident_within_365d", "bool"),
        ("standards_participation", "bool"),
        ("accounting_sound", "bool"),
        ("audit_based_cit_collection", "bool"),
        ("industry", "text"),
        ("industry_restricted_or_eliminated", "bool"),
        ("incident_or_misconduct_last_or_current_year", "bool"),
        ("in_abnormal_operations_list", "bool"),
        ("in_serious_dishonesty_list", "bool"),
        ("ip_class1_count", "count"),
        ("ip_class2_count_unused", "count"),
        ("ip_class2_count_used_before", "count"),
        ("ip_class2_count", "count"),
        ("ip_any_self_developed", "bool"),
        ("expert_tech_advancement", "count"),
        ("expert_core_support", "count"),
        ("expert_ip_acquisition", "count"),
        ("expert_standards_bonus", "count"),
        ("expert_rd_org", "count"),
        ("dq_national_sci_award_top3_within_5y", "bool"),
        ("dq_provincial_rd_institution", "bool"),
        ("dq_led_standard_within_5y", "bool"),
        ("tax_year", "count"),
        ("manufacturing_revenue_share", "share"),
        ("negative_list_revenue_share", "share"),
        ("is_registered_tsme_for_year", "bool"),
        ("is_ic_or_machine_tool_enterprise", "bool"),
        ("rd_expense_expensed", "money"),
        ("rd_intangible_cost", "money"),
        ("scheme", "text"),
        ("applicant_type", "text"),
        ("registered_in_shanghai", "bool"),
        ("is_tsme", "bool"),
        ("team_company_registered", "bool"),
        ("team_in_incubator_park_or_maker_space", "bool"),
        ("team_core_members", "count"),
        ("contract_amount", "money"),
        ("voucher_used_this_year", "money"),
        ("service_provider_on_platform", "bool"),
        ("service_category_eligible", "bool"),
    ]
    for k in FISCAL_YEARS:
        cols.append((f"fy{k}_present", "bool"))
        cols += [(f"fy{k}_{field}", typ) for field, typ in FY_FIELDS]
        cols.append((f"fy{k}_conversions", "count"))
    cols += [
        ("rd_expense_expensed_by_period_present", "bool"),
        ("rd_expensed_2022_jan_sep", "money"),
        ("rd_expensed_2022_oct_dec", "money"),
    ]
    # 免申即享 district columns (certificates and awards), appended last.
    cols += [
        ("hte_valid", "bool"),
        ("hte_first_certificate_issue_date", "date"),
        ("hte_first_certificate_issue_date_invalid", "bool"),
        ("little_giant_valid", "bool"),
        ("little_giant_certificate_issue_date", "date"),
        ("little_giant_certificate_issue_date_invalid", "bool"),
        ("sh_sci_award_count", "count"),
        ("sh_sci_award_year", "count"),
        ("sh_sci_award_grade", "text"),
        ("sh_sci_award_unit_rank", "count"),
    ]
    return dict(cols)


#: Column name -> type (text, date, bool, count, money, number, share), in row order.
COLUMN_TYPES: dict[str, str] = _column_types()
COLUMNS: tuple[str, ...] = tuple(COLUMN_TYPES)


@cache
def windows() -> dict[str, Any]:
    """The look-back windows and categories of ``data/facts.yaml``."""
    text = resources.files("kechuang.registry").joinpath("data/facts.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def years_before(d: dt.date, years: int) -> dt.date:
    """The corresponding day ``years`` earlier (29 Feb -> 28 Feb, 《民法典》第二百零二条).

    >>> years_before(dt.date(2024, 2, 29), 5)
    datetime.date(2019, 2, 28)
    """
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


def date_int(d: dt.date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


# --- engine differences, one small table per vendor ---------------------------


@dataclass(frozen=True)
class Dialect:
    #: A DATE column as the integer yyyymmdd.
    date_int: Callable[[str], str]
    #: Calendar year of a DATE column, as an integer.
    year: Callable[[str], str]
    #: Whole days from a DATE column to a date literal.
    days_until: Callable[[str, str], str]


DIALECTS: dict[str, Dialect] = {
    # SQLite stores Django DateFields as ISO text 'YYYY-MM-DD'.
    "sqlite": Dialect(
        date_int=lambda c: f"CAST(REPLACE({c}, '-', '') AS INTEGER)",
        year=lambda c: f"CAST(SUBSTR({c}, 1, 4) AS INTEGER)",
        days_until=lambda c, lit: f"CAST(JULIANDAY({lit}) - JULIANDAY({c}) AS INTEGER)",
    ),
    "postgresql": Dialect(
        date_int=lambda c: f"CAST(TO_CHAR({c}, 'YYYYMMDD') AS INTEGER)",
        year=lambda c: f"CAST(EXTRACT(YEAR FROM {c}) AS INTEGER)",
        days_until=lambda c, lit: f"(CAST({lit} AS DATE) - {c})",
    ),
}


def _lit(value: dt.date | str) -> str:
    """A quoted literal; only for dates and our own code words (never user text)."""
    text = value.isoformat() if isinstance(value, dt.date) else value
    if "'" in text:
        raise ValueError(f"refusing to quote {text!r}")
    return f"'{text}'"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")"


def _table(model: type) -> str:
    return model._meta.db_table


def facts_sql(*, as_of: dt.date, enterprise_ids: Iterable[int] | None = None, vendor: str) -> str:
    """The SELECT producing one flat facts row per enterprise, as of ``as_of``.

    ``enterprise_ids`` (registry primary keys) restricts the rows; None means
    every enterprise. ``vendor`` is a Django ``connection.vendor``.
    """
    if vendor not in DIALECTS:
        raise ValueError(f"no facts SQL for database vendor {vendor!r}")
    sql = DIALECTS[vendor]
    w = windows()
    d = _lit(as_of)
    y = as_of.year
    incident_from = _lit(as_of - dt.timedelta(days=w["major_incident_window_days"]))
    dq_from = _lit(years_before(as_of, w["direct_qualification_window_years"]))
    ids = None
    if enterprise_ids is not None:
        ids = "(" + ", ".join(str(int(i)) for i in enterprise_ids) + ")"
        if ids == "()":
            ids = "(NULL)"

    def restrict(column: str) -> str:
        return f" AND {column} IN {ids}" if ids else ""

    # Industry label from the 2-digit division, per data/industries.yaml.
    by_label: dict[str, list[str]] = {}
    for division, label in codes.industry_labels_by_division().items():
        by_label.setdefault(label, []).append(division)
    industry = (
        "CASE WHEN e.industry_code = '' THEN NULL "
        + " ".join(
            f"WHEN SUBSTR(e.industry_code, 1, 2) IN {_in(sorted(divs))} THEN {_lit(label)}"
            for label, divs in sorted(by_label.items())
        )
        + " ELSE 'other' END"
    )

    class1 = _in(t for t, c in codes.IP_CLASS.items() if c == "I")
    class2 = _in(t for t, c in codes.IP_CLASS.items() if c == "II")
    in_force = (
        f"(i.grant_date IS NOT NULL AND i.grant_date <= {d} AND ("
        f"(i.status IN {_in(w['ip_in_force_statuses'])} "
        f"AND (i.expiry_date IS NULL OR i.expiry_date >= {d})) OR "
        f"(i.status IN {_in(w['ip_ended_statuses'])} AND i.expiry_date >= {d})))"
    )
    # The IP an 高企 application counts: Ⅰ类, and Ⅱ类 not used in an earlier one.
    counted = (
        f"(i.ip_type IN {class1} OR (i.ip_type IN {class2} "
        f"AND NOT i.used_in_earlier_hte_application))"
    )
    ip = f"""
        SELECT i.enterprise_id,
          SUM(CASE WHEN i.ip_type IN {class1} THEN 1 ELSE 0 END) AS class1,
          SUM(CASE WHEN i.ip_type IN {class2} AND NOT i.used_in_earlier_hte_application
              THEN 1 ELSE 0 END) AS class2_unused,
          SUM(CASE WHEN i.ip_type IN {class2} AND i.used_in_earlier_hte_application
              THEN 1 ELSE 0 END) AS class2_used,
          SUM(CASE WHEN i.ip_type IN {class2} THEN 1 ELSE 0 END) AS class2,
          SUM(CASE WHEN {counted} AND i.self_developed THEN 1 ELSE 0 END) AS self_dev,
          SUM(CASE WHEN {counted} AND i.self_developed IS NULL THEN 1 ELSE 0 END) AS self_dev_unknown
        FROM {_table(IPAsset)} i
        WHERE {in_force}{restrict("i.enterprise_id")}
        GROUP BY i.enterprise_id"""

    def cert_valid(kind: str) -> str:
        return (
            f"c.kind = {_lit(kind)} AND c.valid_from <= {d} "
            f"AND (c.valid_to IS NULL OR c.valid_to >= {d})"
        )

    hte_kind = _lit(w["hte_certification_kind"])
    cert = f"""
        SELECT c.enterprise_id,
          MAX(CASE WHEN {cert_valid(w["hte_certification_kind"])} THEN c.valid_from END) AS hte_issued,
          MAX(CASE WHEN {cert_valid(w["tsme_certification_kind"])} THEN 1 ELSE 0 END) AS tsme,
          MIN(CASE WHEN c.kind = {hte_kind} THEN c.valid_from END) AS hte_first,
          MAX(CASE WHEN {cert_valid(w["little_giant_certification_kind"])} THEN c.valid_from END)
            AS giant_issued
        FROM {_table(Certification)} c
        WHERE c.valid_from <= {d}{restrict("c.enterprise_id")}
        GROUP BY c.enterprise_id"""

    def exists(table: str, alias: str, condition: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM {table} {alias} "
            f"WHERE {alias}.enterprise_id = e.id AND {condition})"
        )

    def checked(condition: str) -> str:
        # A record proves TRUE; its absence proves FALSE only once checked.
        return f"CASE WHEN {condition} THEN TRUE WHEN e.compliance_checked THEN FALSE ELSE NULL END"

    major_incident = exists(
        _table(Incident),
        "n",
        f"n.kind IN {_in(w['major_incident_kinds'])} "
        f"AND n.occurred_on >= {incident_from} AND n.occurred_on <= {d}",
    )
    misconduct = exists(
        _table(Incident),
        "n",
        f"n.kind IN {_in(w['incident_or_misconduct_kinds'])} "
        f"AND n.occurred_on >= {_lit(dt.date(y - 1, 1, 1))} AND n.occurred_on <= {d}",
    )

    def listed(kind: str) -> str:
        return exists(
            _table(ListEntry),
            "l",
            f"l.kind = {_lit(kind)} AND l.listed_on <= {d} "
            f"AND (l.removed_on IS NULL OR l.removed_on > {d})",
        )

    standards_any = exists(_table(StandardLed), "s", f"s.published_on <= {d}")
    dq_award = exists(
        _table(Award),
        "a",
        f"a.kind = {_lit(w['national_award_kind'])} "
        f"AND a.unit_rank <= {int(w['national_award_top_units'])} "
        f"AND a.awarded_on >= {dq_from} AND a.awarded_on <= {d}",
    )
    dq_rd = exists(
        _table(RDInstitution),
        "r",
        f"r.level IN {_in(w['provincial_rd_institution_levels'])} AND r.recognized_on <= {d} "
        f"AND (r.revoked_on IS NULL OR r.revoked_on > {d})",
    )
    dq_standard = exists(
        _table(StandardLed),
        "s",
        f"s.role = {_lit(w['led_standard_role'])} "
        f"AND s.level IN {_in(w['led_standard_levels'])} "
        f"AND s.published_on >= {dq_from} AND s.published_on <= {d}",
    )

    # The enterprise's 上海市科学技术奖 awards up to D: how many, and the best one of the
    # latest award year (best grade, then best unit rank; data/facts.yaml maps the grades).
    grades = w["sh_sci_award_grades"]
    grade_order = (
        "CASE "
        + " ".join(f"WHEN a.grade = {_lit(text)} THEN {i}" for i, text in enumerate(grades))
        + f" ELSE {len(grades)} END"
    )
    grade_code = (
        "CASE "
        + " ".join(
            f"WHEN a.grade = {_lit(text)} THEN {_lit(code)}" for text, code in grades.items()
        )
        + " END"
    )
    award_year = sql.year("a.awarded_on")
    sh_award = f"""
        SELECT enterprise_id, n, yr, grade, unit_rank FROM (
          SELECT a.enterprise_id, {award_year} AS yr, {grade_code} AS grade, a.unit_rank,
            COUNT(*) OVER (PARTITION BY a.enterprise_id) AS n,
            ROW_NUMBER() OVER (PARTITION BY a.enterprise_id ORDER BY {award_year} DESC,
              {grade_order}, CASE WHEN a.unit_rank IS NULL THEN 1 ELSE 0 END, a.unit_rank) AS rn
          FROM {_table(Award)} a
          WHERE a.kind = {_lit(w["sh_sci_award_kind"])} AND a.awarded_on <= {d}{restrict("a.enterprise_id")}
        ) ranked WHERE rn = 1"""

    def ip_count(column: str) -> str:
        return f"CASE WHEN e.ip_surveyed THEN COALESCE(ip.{column}, 0) END"

    expr: dict[str, str] = {
        "entity_id": "e.credit_code",
        "as_of": str(date_int(as_of)),
        "registration_date": sql.date_int("e.registration_date"),
        "registration_date_invalid": "FALSE",
        "dq_hte_certificate_issue_date": sql.date_int("cert.hte_issued"),
        "dq_hte_certificate_issue_date_invalid": "FALSE",
        "order_date": "NULL",
        "order_date_invalid": "FALSE",
        "registration_year": sql.year("e.registration_date"),
        "days_since_registration": sql.days_until("e.registration_date", d),
        "major_incident_within_365d": checked(major_incident),
        "standards_participation": (
            f"CASE WHEN {standards_any} THEN TRUE ELSE e.standards_participation END"
        ),
        "industry": industry,
        "incident_or_misconduct_last_or_current_year": checked(misconduct),
        "in_abnormal_operations_list": checked(listed("abnormal_operations")),
        "in_serious_dishonesty_list": checked(listed("serious_dishonesty")),
        "ip_class1_count": ip_count("class1"),
        "ip_class2_count_unused": ip_count("class2_unused"),
        "ip_class2_count_used_before": ip_count("class2_used"),
        "ip_class2_count": ip_count("class2"),
        "ip_any_self_developed": (
            "CASE WHEN NOT e.ip_surveyed OR e.ip_surveyed IS NULL THEN NULL "
            "WHEN COALESCE(ip.self_dev, 0) > 0 THEN TRUE "
            "WHEN COALESCE(ip.self_dev_unknown, 0) > 0 THEN NULL ELSE FALSE END"
        ),
        "dq_national_sci_award_top3_within_5y": f"CASE WHEN {dq_award} THEN TRUE ELSE FALSE END",
        "dq_provincial_rd_institution": f"CASE WHEN {dq_rd} THEN TRUE ELSE FALSE END",
        "dq_led_standard_within_5y": f"CASE WHEN {dq_standard} THEN TRUE ELSE FALSE END",
        "is_tsme": "CASE WHEN cert.tsme = 1 THEN TRUE ELSE FALSE END",
        "rd_expense_expensed_by_period_present": "FALSE",
        # The registry is the record of its own certificates and awards: none means none.
        "hte_valid": "CASE WHEN cert.hte_issued IS NOT NULL THEN TRUE ELSE FALSE END",
        "hte_first_certificate_issue_date": sql.date_int("cert.hte_first"),
        "hte_first_certificate_issue_date_invalid": "FALSE",
        "little_giant_valid": "CASE WHEN cert.giant_issued IS NOT NULL THEN TRUE ELSE FALSE END",
        "little_giant_certificate_issue_date": sql.date_int("cert.giant_issued"),
        "little_giant_certificate_issue_date_invalid": "FALSE",
        "sh_sci_award_count": "COALESCE(sha.n, 0)",
        "sh_sci_award_year": "sha.yr",
        "sh_sci_award_grade": "sha.grade",
        "sh_sci_award_unit_rank": "sha.unit_rank",
    }
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
        expr[name] = f"e.{name}"
    for k in FISCAL_YEARS:
        expr[f"fy{k}_present"] = f"(fy{k}.id IS NOT NULL)"
        for field, _typ in FY_FIELDS:
            expr[f"fy{k}_{field}"] = f"fy{k}.{field}"
        expr[f"fy{k}_conversions"] = f"fy{k}.conversions"
    # Everything else is transaction data (tax year, voucher order) or expert
    # judgement that the registry does not hold: unknown.
    select = ",\n  ".join(f"{expr.get(name, 'NULL')} AS {name}" for name in COLUMNS)

    fy_joins = "\n".join(
        f"LEFT JOIN {_table(FiscalYear)} fy{k} ON fy{k}.enterprise_id = e.id AND fy{k}.year = {y - k}"
        for k in FISCAL_YEARS
    )
    where = f"WHERE e.id IN {ids}" if ids else ""
    return (
        f"SELECT\n  {select}\nFROM {_table(Enterprise)} e\n{fy_joins}\n"
        f"LEFT JOIN ({ip}) ip ON ip.enterprise_id = e.id\n"
        f"LEFT JOIN ({cert}) cert ON cert.enterprise_id = e.id\n"
        f"LEFT JOIN ({sh_award}) sha ON sha.enterprise_id = e.id\n"
        f"{where}"
    )


_SCALE = {"money": Decimal("0.01"), "number": Decimal("0.01"), "share": Decimal("1e-12")}


#: The columns SQLite returns in another type than the row's: decimals (int or
#: float) and booleans (0/1). Counts and dates already come back as int.
_CONVERTED = [
    (name, typ) for name, typ in COLUMN_TYPES.items() if typ in ("money", "number", "share", "bool")
]


def convert_row(values: Iterable[Any]) -> dict[str, Any]:
    """Typed Python values for one SQLite result row: money as Decimal, flags as bool.

    SQLite returns decimals as int/float; the float's shortest repr is the
    stored decimal, so no precision is lost for amounts of up to 15
    significant digits."""
    row = dict(zip(COLUMNS, values, strict=True))
    for name, typ in _CONVERTED:
        value = row[name]
        if value is None:
            continue
        if typ == "bool":
            row[name] = bool(value)
        else:
            number = value if isinstance(value, Decimal) else Decimal(repr(value))
            row[name] = number.quantize(_SCALE[typ])
    return row
