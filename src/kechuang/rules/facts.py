"""Nested facts as of a date -> the one flat row both execution paths read.

The nested form is the one ../shared/policies/RULES.md defines (fiscal years keyed by
year, ``ip`` counts, flags; an absent key is unknown). The flat row names fiscal years
relative to the as-of date (``fy1_*`` = last year) so that one compiled query serves every
enterprise; docs/facts-row.md documents each column. NULL (``None``) means unknown: this
module never turns an absent value into 0, False or "".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kechuang.rules.errors import MalformedFacts

#: Fiscal years before the as-of date that the flat row carries: fy1 = Y-1 … fy3 = Y-3.
FISCAL_YEARS = (1, 2, 3)

#: SQL storage scale per numeric type (digits after the decimal point).
SCALES = {"money": 2, "number": 2, "share": 12, "count": 0, "date": 0}


@dataclass(frozen=True)
class Column:
    """One column of the flat facts row.

    ``path`` is the dotted nested path as RULES.md names it (used in ``missing_fields``);
    ``{year}`` stands for the fiscal year the column holds, resolved against the as-of date.
    """

    name: str
    type: str  # money | number | share | count | bool | text | date
    path: str
    fiscal_year: int | None = None  # K in fyK_*, else None
    #: The field named in missing_fields / invalid_fields when it is not ``path`` (a part
    #: of an input RULES.md names as one, e.g. a period of the 2022 R&D split).
    reported_as: str | None = None

    def nested_path(self, as_of: dt.date) -> str:
        """Where the value sits in the nested facts."""
        if self.fiscal_year is None:
            return self.path
        return self.path.format(year=as_of.year - self.fiscal_year)

    def reported_path(self, as_of: dt.date) -> str:
        """The field a decision names when this value is missing or invalid."""
        return self.reported_as or self.nested_path(as_of)


_FY_FIELDS: tuple[tuple[str, str], ...] = (
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

_TOP_LEVEL: tuple[tuple[str, str, str], ...] = (
    ("registered_in_mainland", "bool", "registered_in_mainland"),
    ("resident_enterprise", "bool", "resident_enterprise"),
    ("tech_field_supported", "bool", "tech_field_supported"),
    ("major_incident_within_365d", "bool", "major_incident_within_365d"),
    ("standards_participation", "bool", "standards_participation"),
    ("accounting_sound", "bool", "accounting_sound"),
    ("audit_based_cit_collection", "bool", "audit_based_cit_collection"),
    ("industry", "text", "industry"),
    ("industry_restricted_or_eliminated", "bool", "industry_restricted_or_eliminated"),
    (
        "incident_or_misconduct_last_or_current_year",
        "bool",
        "incident_or_misconduct_last_or_current_year",
    ),
    ("in_abnormal_operations_list", "bool", "in_abnormal_operations_list"),
    ("in_serious_dishonesty_list", "bool", "in_serious_dishonesty_list"),
    ("ip_class1_count", "count", "ip.class1_count"),
    ("ip_class2_count_unused", "count", "ip.class2_count_unused"),
    ("ip_class2_count_used_before", "count", "ip.class2_count_used_before"),
    ("ip_class2_count", "count", "ip.class2_count"),
    ("ip_any_self_developed", "bool", "ip.any_self_developed"),
    ("expert_tech_advancement", "count", "expert_scores.tech_advancement"),
    ("expert_core_support", "count", "expert_scores.core_support"),
    ("expert_ip_acquisition", "count", "expert_scores.ip_acquisition"),
    ("expert_standards_bonus", "count", "expert_scores.standards_bonus"),
    ("expert_rd_org", "count", "expert_scores.rd_org"),
    (
        "dq_national_sci_award_top3_within_5y",
        "bool",
        "direct_qualification.national_sci_award_top3_within_5y",
    ),
    ("dq_provincial_rd_institution", "bool", "direct_qualification.provincial_rd_institution"),
    ("dq_led_standard_within_5y", "bool", "direct_qualification.led_standard_within_5y"),
    ("tax_year", "count", "tax_year"),
    ("manufacturing_revenue_share", "share", "manufacturing_revenue_share"),
    ("negative_list_revenue_share", "share", "negative_list_revenue_share"),
    ("is_registered_tsme_for_year", "bool", "is_registered_tsme_for_year"),
    ("is_ic_or_machine_tool_enterprise", "bool", "is_ic_or_machine_tool_enterprise"),
    ("rd_expense_expensed", "money", "rd_expense_expensed"),
    ("rd_intangible_cost", "money", "rd_intangible_cost"),
    ("scheme", "text", "scheme"),
    ("applicant_type", "text", "applicant_type"),
    ("registered_in_shanghai", "bool", "registered_in_shanghai"),
    ("is_tsme", "bool", "is_tsme"),
    ("team_company_registered", "bool", "team.company_registered"),
    ("team_in_incubator_park_or_maker_space", "bool", "team.in_incubator_park_or_maker_space"),
    ("team_core_members", "count", "team.core_members"),
    ("contract_amount", "money", "contract_amount"),
    ("voucher_used_this_year", "money", "voucher_used_this_year"),
    ("service_provider_on_platform", "bool", "service_provider_on_platform"),
    ("service_category_eligible", "bool", "service_category_eligible"),
)

#: Date inputs: each has a companion ``<name>_invalid`` flag for a value that does not parse.
_DATES: tuple[tuple[str, str], ...] = (
    ("registration_date", "registration_date"),
    ("dq_hte_certificate_issue_date", "direct_qualification.hte_certificate_issue_date"),
    ("order_date", "order_date"),
)

#: Certificates and awards the district 免申即享 policies read (docs/facts-row.md). The
#: registry knows them for every enterprise; a nested facts file may leave them out.
_DISTRICT: tuple[tuple[str, str, str], ...] = (
    ("hte_valid", "bool", "certifications.hte_valid"),
    ("hte_first_certificate_issue_date", "date", "certifications.hte_first_issue_date"),
    ("little_giant_valid", "bool", "certifications.little_giant_valid"),
    ("little_giant_certificate_issue_date", "date", "certifications.little_giant_issue_date"),
    ("sh_sci_award_count", "count", "awards.sh_sci_award_count"),
    ("sh_sci_award_year", "count", "awards.sh_sci_award_year"),
    ("sh_sci_award_grade", "text", "awards.sh_sci_award_grade"),
    ("sh_sci_award_unit_rank", "count", "awards.sh_sci_award_unit_rank"),
)

#: The two periods of 2022 that 公告2022年第28号 splits (RULES.md 4.2).
RD_2022_PERIODS = {
    "2022-01-01..2022-09-30": "rd_expensed_2022_jan_sep",
    "2022-10-01..2022-12-31": "rd_expensed_2022_oct_dec",
}


def _columns() -> tuple[Column, ...]:
    cols: list[Column] = [
        Column("entity_id", "text", "id"),
        Column("as_of", "date", "as_of"),
    ]
    for name, path in _DATES:
        cols.append(Column(name, "date", path))
        cols.append(Column(f"{name}_invalid", "bool", path))
    cols.append(Column("registration_year", "count", "registration_date"))
    cols.append(Column("days_since_registration", "count", "registration_date"))
    cols.extend(Column(n, t, p) for n, t, p in _TOP_LEVEL)
    for k in FISCAL_YEARS:
        cols.append(Column(f"fy{k}_present", "bool", "financials.{year}", k))
        for field, typ in _FY_FIELDS:
            cols.append(Column(f"fy{k}_{field}", typ, "financials.{year}." + field, k))
        cols.append(Column(f"fy{k}_conversions", "count", "conversions.{year}", k))
    cols.append(
        Column("rd_expense_expensed_by_period_present", "bool", "rd_expense_expensed_by_period")
    )
    for period, name in RD_2022_PERIODS.items():
        # RULES.md 4.2/4.3 name the split as one input: a missing or negative part is
        # reported as the split, like a split that does not add up.
        path = f"rd_expense_expensed_by_period.{period}"
        cols.append(Column(name, "money", path, reported_as="rd_expense_expensed_by_period"))
    for name, typ, path in _DISTRICT:
        cols.append(Column(name, typ, path))
        if typ == "date":
            cols.append(Column(f"{name}_invalid", "bool", path))
    return tuple(cols)


FLAT_COLUMNS: tuple[Column, ...] = _columns()
COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in FLAT_COLUMNS}


def date_int(d: dt.date) -> int:
    """A date as the integer ``yyyymmdd`` the flat row stores.

    >>> date_int(dt.date(2022, 3, 15))
    20220315
    """
    return d.year * 10000 + d.month * 100 + d.day


def int_date(v: int) -> dt.date:
    """The inverse of :func:`date_int`.

    >>> int_date(20220315)
    datetime.date(2022, 3, 15)
    """
    return dt.date(v // 10000, v // 100 % 100, v % 100)


#: The largest decimal exponent (either sign) a given number may have.
MAGNITUDE_DIGITS = 30

#: A date as text: the ISO 8601 calendar date YYYY-MM-DD (RFC 3339 full-date), nothing
#: else Python's ``fromisoformat`` would also take (``20210301``, ``2021-W10-1``, padding).
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

#: A number as text: the text of a JSON number (RFC 8259), as money is often sent to keep
#: it exact, and nothing else ``Decimal()`` would also read (full-width digits, ``1_000``,
#: ``+5``, padding, ``Infinity``).
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def iso_date(text: str) -> dt.date | None:
    """``YYYY-MM-DD`` as a date; None for any other text or an impossible day."""
    if not _DATE_TEXT.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:  # 2021-02-30
        return None


def parse_date(value: Any) -> dt.date | None:
    """An ISO date (or a date object); None when it does not parse."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return iso_date(value)
    return None


def _decimal(value: Any, field: str) -> Decimal:
    # Through the decimal text, never a binary float (RULES.md 0.5).
    if isinstance(value, bool):
        raise MalformedFacts(field, f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | float):
        result = Decimal(str(value))
    elif isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        result = Decimal(value)
    else:
        raise MalformedFacts(field, f"expected a number, got {value!r}")
    if not result.is_finite():
        raise MalformedFacts(field, f"expected a finite number, got {value!r}")
    if result and abs(result.adjusted()) > MAGNITUDE_DIGITS:
        # 1e999999999 is a valid JSON number, but exact arithmetic on it would build an
        # integer of a billion digits: no amount, count or share is that large or small.
        raise MalformedFacts(field, f"out of range (beyond 1e±{MAGNITUDE_DIGITS}): {value!r}")
    return result


def _places(number: Decimal) -> int:
    """Decimal places of a number once trailing zeros are dropped (1.50 -> 1)."""
    exponent = number.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _typed(value: Any, typ: str, field: str) -> Any:
    if value is None:
        return None
    if typ == "bool":
        if isinstance(value, bool):
            return value
        raise MalformedFacts(field, f"expected true or false, got {value!r}")
    if typ == "text":
        if isinstance(value, str):
            return value
        raise MalformedFacts(field, f"expected text, got {value!r}")
    number = _decimal(value, field)
    if typ == "count":
        if number != number.to_integral_value():
            raise MalformedFacts(field, f"expected a whole number, got {value!r}")
        return int(number)
    return number


class _NotAnObject:
    """Read through a value that stands where an object belongs (``"team": "n/a"``)."""

    def __init__(self, field: str) -> None:
        self.field = field


def _get(mapping: Mapping[str, Any], path: str, lenient: bool = False) -> Any:
    """The value at a dotted path; None where a part is absent. A part that is present but
    not an object (``"ip": [1, 2]``) is refused, not read as absent; with ``lenient`` it
    gives a :class:`_NotAnObject`, which the row reports as a malformed value."""
    node: Any = mapping
    parts = path.split(".")
    for i, part in enumerate(parts):
        if node is None:
            return None
        if not isinstance(node, Mapping):
            field = ".".join(parts[:i])
            if lenient:
                return _NotAnObject(field)
            raise MalformedFacts(field, "expected an object")
        node = node.get(part)
    return node


def _year_key(financials: Mapping[Any, Any], year: int) -> Any:
    for key in (year, str(year)):
        if key in financials:
            return key
    return None


#: Key of a flat row built with ``lenient=True`` (not a column): the names of the columns
#: whose given value did not fit the column's type. Their value is NULL in the row.
MALFORMED = "__malformed__"


def typed(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """The row itself, if every value fits its column: the SQL engines read typed rows only.

    A row flattened with ``lenient=True`` may hold values of the wrong type as NULL; an
    engine would read them as unknown (missing) instead of invalid, so it is refused.
    """
    bad = row.get(MALFORMED)
    if bad:
        names = ", ".join(COLUMNS_BY_NAME[n].nested_path(int_date(row["as_of"])) for n in sorted(bad))
        raise MalformedFacts(names, "value of the wrong type: only evaluate() reports it")
    return row


def _unwrapped(nested: Mapping[str, Any]) -> Mapping[str, Any]:
    """The enterprise's facts, also when given as ``{"enterprise": {...}}`` (RULES.md 2.2
    heads the inputs so): the inner object, beside any other top-level key (an ``id``)."""
    inner = nested.get("enterprise")
    if not isinstance(inner, Mapping):
        return nested
    outer = {k: v for k, v in nested.items() if k != "enterprise"}
    both = sorted(str(k) for k in set(outer) & set(inner) if outer[k] != inner[k])
    if both:
        # Two values for one fact: neither may silently win.
        raise MalformedFacts(both[0], "given differently inside and beside 'enterprise'")
    return {**outer, **inner}


def flatten(
    nested: Mapping[str, Any],
    as_of: dt.date,
    entity_id: str | None = None,
    *,
    lenient: bool = False,
) -> dict:
    """Turn one enterprise's nested facts into the flat row, as of ``as_of``.

    Raises :class:`MalformedFacts` for facts that are not an object and, unless
    ``lenient``, for a value that does not fit its field's type (a text where a number
    belongs, a count of 2.5, an amount in fractions of a fen, which the SQL engines cannot
    store exactly) or a value where an object belongs (``"team": "n/a"``, a 2022 split with
    unknown periods). With ``lenient`` such a value is present but impossible, like a date
    that does not parse (RULES.md 0.4): the values read through it are left NULL and their
    columns named under :data:`MALFORMED`, for the policies to report invalid where they
    need them. Merely absent or impossible values are never errors: they become NULL or
    are judged invalid by the policies.

    >>> row = flatten({"financials": {2024: {"sales_revenue": 52900000}}}, dt.date(2025, 4, 10))
    >>> row["fy1_present"], row["fy1_sales_revenue"], row["fy2_present"], row["fy1_rd_expense"]
    (True, Decimal('52900000'), False, None)
    """
    if not isinstance(nested, Mapping):
        raise MalformedFacts("facts", "expected a JSON object of facts")
    nested = _unwrapped(nested)
    row: dict[str, Any] = {c.name: None for c in FLAT_COLUMNS}
    malformed: set[str] = set()

    def put(name: str, value: Any, typ: str, path: str) -> None:
        if isinstance(value, _NotAnObject):  # (lenient only: _get raises otherwise)
            malformed.add(name)
            return
        try:
            row[name] = typed = _typed(value, typ, path)
        except MalformedFacts:
            if not lenient:
                raise
            malformed.add(name)
            return
        places = SCALES.get(typ)
        if not lenient and places and isinstance(typed, Decimal) and _places(typed) > places:
            # The SQL engines store this type to ``places`` decimals: refuse rather than
            # round. In process (lenient) the exact value is kept (RULES.md 0.5).
            raise MalformedFacts(path, f"more than {places} decimal places: {value!r}")

    def not_an_object(field: str, reason: str, names: list[str]) -> None:
        """A value where an object belongs: an error for the SQL engines' rows; in process,
        every value read through it is present but impossible (RULES.md 0.4), reported
        invalid where a policy needs it, and ignored where none does."""
        if not lenient:
            raise MalformedFacts(field, reason)
        malformed.update(names)

    def get(path: str) -> Any:
        return _get(nested, path, lenient)

    row["entity_id"] = entity_id if entity_id is not None else nested.get("id")
    row["as_of"] = date_int(as_of)

    for name, path in _DATES:
        raw = get(path)
        if raw is None:
            row[f"{name}_invalid"] = False
            continue
        parsed = parse_date(raw)
        row[name] = date_int(parsed) if parsed else None
        row[f"{name}_invalid"] = parsed is None
    reg = parse_date(get("registration_date"))
    if reg is not None:
        row["registration_year"] = reg.year
        row["days_since_registration"] = (as_of - reg).days

    for name, typ, path in _TOP_LEVEL:
        put(name, get(path), typ, path)

    financials = nested.get("financials")
    conversions = nested.get("conversions")
    if financials is not None and not isinstance(financials, Mapping):
        fields = [f"fy{k}_{field}" for k in FISCAL_YEARS for field, _ in _FY_FIELDS]
        not_an_object("financials", "expected an object keyed by fiscal year", fields)
    if conversions is not None and not isinstance(conversions, Mapping):
        fields = [f"fy{k}_conversions" for k in FISCAL_YEARS]
        not_an_object("conversions", "expected an object keyed by fiscal year", fields)
    for k in FISCAL_YEARS:
        year = as_of.year - k
        record: Any = None
        if isinstance(financials, Mapping):
            key = _year_key(financials, year)
            row[f"fy{k}_present"] = key is not None
            record = financials.get(key) if key is not None else None
        else:
            # Figures given in a shape that names no year: every year is given, unreadable.
            row[f"fy{k}_present"] = financials is not None
        if record is not None and not isinstance(record, Mapping):
            fields = [f"fy{k}_{field}" for field, _ in _FY_FIELDS]
            not_an_object(f"financials.{year}", "expected an object of figures", fields)
            record = None
        for field, typ in _FY_FIELDS:
            value = record.get(field) if record else None
            put(f"fy{k}_{field}", value, typ, f"financials.{year}.{field}")
        if isinstance(conversions, Mapping):
            ckey = _year_key(conversions, year)
            value = conversions.get(ckey) if ckey is not None else None
            put(f"fy{k}_conversions", value, "count", f"conversions.{year}")

    split = nested.get("rd_expense_expensed_by_period")
    row["rd_expense_expensed_by_period_present"] = split is not None
    if split is not None:
        periods = list(RD_2022_PERIODS.values())
        unknown = set(split) - set(RD_2022_PERIODS) if isinstance(split, Mapping) else set()
        if not isinstance(split, Mapping):
            not_an_object("rd_expense_expensed_by_period", "expected an object", periods)
        elif unknown:
            not_an_object(
                "rd_expense_expensed_by_period",
                f"unknown period(s) {sorted(unknown)}; expected {sorted(RD_2022_PERIODS)}",
                periods,
            )
        else:
            for period, name in RD_2022_PERIODS.items():
                put(name, split.get(period), "money", f"rd_expense_expensed_by_period.{period}")

    for name, typ, path in _DISTRICT:
        raw = get(path)
        if typ != "date":
            put(name, raw, typ, path)
            continue
        parsed = parse_date(raw) if raw is not None else None
        row[name] = date_int(parsed) if parsed else None
        row[f"{name}_invalid"] = raw is not None and parsed is None
    if malformed:
        row[MALFORMED] = frozenset(malformed)
    return row


def iter_flatten(
    records: Iterator[tuple[str, Mapping[str, Any]]], as_of: dt.date
) -> Iterator[dict]:
    """Flatten many ``(entity_id, nested)`` pairs lazily (for Parquet writers)."""
    for entity_id, nested in records:
        yield flatten(nested, as_of, entity_id)
