"""Everything that reads the registry: for pages, the API, exports and other apps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from kechuang.registry import codes
from kechuang.registry.facts import (
    COLUMNS,
    convert_row,
    facts_sql,
    windows,
    years_before,
)
from kechuang.registry.models import Certification, Enterprise


def enterprise_list(
    *,
    search: str = "",
    street: str = "",
    industry_code: str = "",
    certification: str = "",
    as_of: dt.date | None = None,
) -> QuerySet[Enterprise]:
    """Enterprises matching a name or credit-code search and the filters.

    ``industry_code`` matches by prefix (``65`` finds every software class);
    ``certification`` is a kind (``hte``, ``tsme`` …) valid on ``as_of``
    (default today)."""
    qs = Enterprise.objects.all()
    search = search.strip()
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(credit_code__icontains=search.upper()))
    if street:
        qs = qs.filter(street=street)
    if industry_code:
        qs = qs.filter(industry_code__startswith=industry_code)
    if certification:
        on = as_of or dt.date.today()
        qs = qs.filter(
            Q(certifications__valid_to__isnull=True) | Q(certifications__valid_to__gte=on),
            certifications__kind=certification,
            certifications__valid_from__lte=on,
        ).distinct()
    return qs.order_by("credit_code")


def enterprise_get(*, credit_code: str) -> Enterprise | None:
    return Enterprise.objects.filter(credit_code=credit_code.strip().upper()).first()


def enterprise_streets() -> list[str]:
    """The streets (街道/镇) present in the registry, for a filter menu."""
    return list(
        Enterprise.objects.exclude(street="")
        .order_by("street")
        .values_list("street", flat=True)
        .distinct()
    )


def enterprise_history(*, enterprise: Enterprise) -> QuerySet:
    """The audit entries about an enterprise and its records, newest first.

    Entries about the enterprise have its credit code as ``obj_id``; entries
    about its records start with it: ``<code>/<year>`` (fiscal year),
    ``<code>/<number>`` (IP), ``<code>/<kind>/<number>`` (certificate)."""
    from kechuang.accounts.models import AuditLog

    code = enterprise.credit_code
    # Only records of the registry: anyone can make an audit entry under any name (a
    # failed login records the username tried, e.g. "<code>/2024"), which must never
    # appear in, or crowd out, an enterprise's history.
    return AuditLog.objects.filter(
        Q(obj_id=code) | Q(obj_id__startswith=f"{code}/"), obj_type__in=HISTORY_TYPES
    ).select_related("actor")


#: Audit ``obj_type`` of the registry's records: the services' names and the admin's
#: (model names).
HISTORY_TYPES = (
    "enterprise", "fiscal_year", "fiscalyear", "ip_asset", "ipasset", "certification",
    "award", "rdinstitution", "standardled", "incident", "listentry",
)  # fmt: skip


# --- facts as of a date --------------------------------------------------------


def enterprise_facts_as_of(*, as_of: dt.date, enterprise_ids: Iterable[int] | None = None) -> str:
    """The SQL SELECT (for the default database) giving the flat facts row of
    docs/facts-row.md for each enterprise (all, or those ids) as of ``as_of``.

    The SQL has no parameters: embed it as a subquery to run a compiled policy
    where the data lives."""
    return facts_sql(as_of=as_of, enterprise_ids=enterprise_ids, vendor=connection.vendor)


def enterprise_facts_rows(
    *, as_of: dt.date, enterprise_ids: Iterable[int] | None = None
) -> list[dict[str, Any]]:
    """Run :func:`enterprise_facts_as_of` and return typed dict rows
    (Decimal money, bool flags, int dates), ordered by credit code."""
    return list(iter_enterprise_facts(as_of=as_of, enterprise_ids=enterprise_ids))


def iter_enterprise_facts(
    *, as_of: dt.date, enterprise_ids: Iterable[int] | None = None, batch_size: int = 5000
) -> Iterator[dict[str, Any]]:
    sql = enterprise_facts_as_of(as_of=as_of, enterprise_ids=enterprise_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) facts ORDER BY entity_id")
        while True:
            rows = cursor.fetchmany(batch_size)
            if not rows:
                return
            if connection.vendor == "postgresql":
                # psycopg already returns Decimal (at the column's scale), bool and int.
                for values in rows:
                    yield dict(zip(COLUMNS, values, strict=True))
            else:
                for values in rows:
                    yield convert_row(values)


def enterprise_nested_facts(enterprise: Enterprise, as_of: dt.date) -> dict[str, Any]:
    """One enterprise's facts in the nested form of ../shared/policies/RULES.md.

    Absent keys are unknown. This walks Python objects, for one enterprise (the
    explain page); batches use :func:`enterprise_facts_as_of`."""
    e = enterprise
    return nested_facts(
        EnterpriseRecords(
            enterprise=e,
            fiscal_years=list(e.fiscal_years.all()),
            ip_assets=list(e.ip_assets.all()),
            certifications=list(e.certifications.all()),
            awards=list(e.awards.all()),
            rd_institutions=list(e.rd_institutions.all()),
            standards=list(e.standards.all()),
            incidents=list(e.incidents.all()),
            list_entries=list(e.list_entries.all()),
        ),
        as_of,
    )


@dataclass
class EnterpriseRecords:
    """An enterprise with all its records (saved, or unsaved from the demo generator)."""

    enterprise: Enterprise
    fiscal_years: list = field(default_factory=list)
    ip_assets: list = field(default_factory=list)
    certifications: list = field(default_factory=list)
    awards: list = field(default_factory=list)
    rd_institutions: list = field(default_factory=list)
    standards: list = field(default_factory=list)
    incidents: list = field(default_factory=list)
    list_entries: list = field(default_factory=list)


def nested_facts(records: EnterpriseRecords, as_of: dt.date) -> dict[str, Any]:
    """The nested facts of :func:`enterprise_nested_facts`, from records in memory."""
    w = windows()
    e = records.enterprise
    facts: dict[str, Any] = {"id": e.credit_code}
    if e.registration_date is not None:
        facts["registration_date"] = e.registration_date.isoformat()
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
        value = getattr(e, name)
        if value is not None:
            facts[name] = value
    if e.industry_code:
        facts["industry"] = codes.industry_label(e.industry_code)

    standards = records.standards
    if any(s.published_on <= as_of for s in standards):
        facts["standards_participation"] = True
    elif e.standards_participation is not None:
        facts["standards_participation"] = e.standards_participation

    incidents = records.incidents
    lists = records.list_entries
    incident_from = as_of - dt.timedelta(days=w["major_incident_window_days"])
    year_start = dt.date(as_of.year - 1, 1, 1)

    def checked(found: bool) -> bool | None:
        return True if found else (False if e.compliance_checked else None)

    def listed(kind: str) -> bool:
        return any(
            x.kind == kind
            and x.listed_on <= as_of
            and (x.removed_on is None or x.removed_on > as_of)
            for x in lists
        )

    flags = {
        "major_incident_within_365d": checked(
            any(
                i.kind in w["major_incident_kinds"] and incident_from <= i.occurred_on <= as_of
                for i in incidents
            )
        ),
        "incident_or_misconduct_last_or_current_year": checked(
            any(
                i.kind in w["incident_or_misconduct_kinds"] and year_start <= i.occurred_on <= as_of
                for i in incidents
            )
        ),
        "in_abnormal_operations_list": checked(listed("abnormal_operations")),
        "in_serious_dishonesty_list": checked(listed("serious_dishonesty")),
    }
    facts.update({k: v for k, v in flags.items() if v is not None})

    if e.ip_surveyed:
        in_force = [ip for ip in records.ip_assets if ip_in_force(ip, as_of)]
        class1 = [ip for ip in in_force if ip.ip_class == "I"]
        class2 = [ip for ip in in_force if ip.ip_class == "II"]
        unused = [ip for ip in class2 if not ip.used_in_earlier_hte_application]
        counted = class1 + unused
        ip: dict[str, Any] = {
            "class1_count": len(class1),
            "class2_count_unused": len(unused),
            "class2_count_used_before": len(class2) - len(unused),
            "class2_count": len(class2),
        }
        if any(x.self_developed for x in counted):
            ip["any_self_developed"] = True
        elif all(x.self_developed is False for x in counted):
            ip["any_self_developed"] = False
        facts["ip"] = ip

    financials: dict[str, Any] = {}
    conversions: dict[str, int] = {}
    for fy in records.fiscal_years:
        financials[str(fy.year)] = {
            name: getattr(fy, name)
            for name in (
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
            if getattr(fy, name) is not None
        }
        if fy.conversions is not None:
            conversions[str(fy.year)] = fy.conversions
    facts["financials"] = financials
    facts["conversions"] = conversions

    dq: dict[str, Any] = {}
    certs = records.certifications
    hte = [
        c for c in certs if c.kind == w["hte_certification_kind"] and certificate_valid(c, as_of)
    ]
    if hte:
        dq["hte_certificate_issue_date"] = max(c.valid_from for c in hte).isoformat()
    dq_from = years_before(as_of, w["direct_qualification_window_years"])
    dq["national_sci_award_top3_within_5y"] = any(
        a.kind == w["national_award_kind"]
        and a.unit_rank is not None
        and a.unit_rank <= w["national_award_top_units"]
        and dq_from <= a.awarded_on <= as_of
        for a in records.awards
    )
    dq["provincial_rd_institution"] = any(
        r.level in w["provincial_rd_institution_levels"]
        and r.recognized_on <= as_of
        and (r.revoked_on is None or r.revoked_on > as_of)
        for r in records.rd_institutions
    )
    dq["led_standard_within_5y"] = any(
        s.role == w["led_standard_role"]
        and s.level in w["led_standard_levels"]
        and dq_from <= s.published_on <= as_of
        for s in standards
    )
    facts["direct_qualification"] = dq
    facts["is_tsme"] = any(
        c.kind == w["tsme_certification_kind"] and certificate_valid(c, as_of) for c in certs
    )
    facts["certifications"], facts["awards"] = district_facts(records, as_of)
    return facts


def district_facts(records: EnterpriseRecords, as_of: dt.date) -> tuple[dict, dict]:
    """The ``certifications`` and ``awards`` facts the district 免申即享 policies read
    (docs/facts-row.md); the same values as the facts SQL."""
    w = windows()
    certs = [c for c in records.certifications if c.valid_from <= as_of]
    hte = [c for c in certs if c.kind == w["hte_certification_kind"]]
    hte_valid = [c for c in hte if certificate_valid(c, as_of)]
    giant = [
        c
        for c in certs
        if c.kind == w["little_giant_certification_kind"] and certificate_valid(c, as_of)
    ]
    certifications: dict[str, Any] = {
        "hte_valid": bool(hte_valid),
        "little_giant_valid": bool(giant),
    }
    if hte:
        certifications["hte_first_issue_date"] = min(c.valid_from for c in hte).isoformat()
    if giant:
        certifications["little_giant_issue_date"] = max(c.valid_from for c in giant).isoformat()

    grades: dict[str, str] = w["sh_sci_award_grades"]
    order = {text: i for i, text in enumerate(grades)}
    won = [a for a in records.awards if a.kind == w["sh_sci_award_kind"] and a.awarded_on <= as_of]
    awards: dict[str, Any] = {"sh_sci_award_count": len(won)}
    if won:
        best = min(
            won,
            key=lambda a: (
                -a.awarded_on.year,
                order.get(a.grade, len(grades)),
                a.unit_rank is None,
                a.unit_rank or 0,
            ),
        )
        awards["sh_sci_award_year"] = best.awarded_on.year
        if best.grade in grades:
            awards["sh_sci_award_grade"] = grades[best.grade]
        if best.unit_rank is not None:
            awards["sh_sci_award_unit_rank"] = best.unit_rank
    return certifications, awards


def ip_in_force(ip: Any, as_of: dt.date) -> bool:
    """An IP asset counts on ``as_of`` (see data/facts.yaml)."""
    w = windows()
    if ip.grant_date is None or ip.grant_date > as_of:
        return False
    if ip.status in w["ip_in_force_statuses"]:
        return ip.expiry_date is None or ip.expiry_date >= as_of
    if ip.status in w["ip_ended_statuses"]:
        return ip.expiry_date is not None and ip.expiry_date >= as_of
    return False


def certificate_valid(cert: Certification, as_of: dt.date) -> bool:
    return cert.valid_from <= as_of and (cert.valid_to is None or cert.valid_to >= as_of)


__all__ = [
    "COLUMNS",
    "certificate_valid",
    "enterprise_facts_as_of",
    "enterprise_facts_rows",
    "enterprise_get",
    "enterprise_history",
    "enterprise_list",
    "enterprise_nested_facts",
    "EnterpriseRecords",
    "nested_facts",
    "enterprise_streets",
    "ip_in_force",
    "iter_enterprise_facts",
]
