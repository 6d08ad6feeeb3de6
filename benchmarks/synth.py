"""Deterministic, streaming generator of synthetic flat facts rows (docs/facts-row.md).

Writes Parquet in batches with the Arrow schema of ``runners.arrow.arrow_schema()``, so
memory stays bounded whatever ``--rows`` is. Each batch has its own seed (``seed + batch
index``): the same command always writes the same file.

Distributions are plausible for 高企 (hte), tsme, R&D super deduction and voucher inputs,
with NULLs (unknown), invalid values (domestic R&D > R&D, S&T staff > staff, negative
amounts, expert scores out of range) and exact boundary values (365 days, sales of
50,000,000.00 and 200,000,000.00, R&D share exactly at the tier, 10% staff, 60% shares,
growth rates exactly at a band edge, a conversion average exactly at a band edge).

    python benchmarks/synth.py --rows 1000000 --as-of 2025-06-30 --out benchmarks/out/facts_1m.parquet
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kechuang.rules.runners.arrow import arrow_schema  # noqa: E402

BATCH = 100_000
EPOCH = dt.date(1970, 1, 1)


def _decimal(cents: np.ndarray, valid: np.ndarray, typ: pa.DataType) -> pa.Array:
    """int64 cents (or 1e-12 units for shares) -> decimal128 without per-value Python work."""
    n = len(cents)
    cents = np.where(valid, cents, 0).astype(np.int64)
    words = np.empty((n, 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension to 128 bits (little endian)
    bitmap = pa.py_buffer(np.packbits(valid.astype(np.uint8), bitorder="little").tobytes())
    return pa.Array.from_buffers(typ, n, [bitmap, pa.py_buffer(words.tobytes())])


def _arr(values: np.ndarray, valid: np.ndarray, typ: pa.DataType) -> pa.Array:
    if pa.types.is_decimal(typ):
        return _decimal(values, valid, typ)
    if pa.types.is_string(typ):
        return pa.array(values, typ, mask=~valid)
    return pa.array(values, typ, mask=~valid)


class Batch:
    def __init__(self, rng: np.random.Generator, n: int, start: int, as_of: dt.date) -> None:
        self.rng, self.n, self.start, self.as_of = rng, n, start, as_of
        self.cols: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def nulls(self, p: float) -> np.ndarray:
        """A validity mask with probability p of NULL."""
        return self.rng.random(self.n) >= p

    def put(self, name: str, values: np.ndarray, valid: np.ndarray | None = None) -> None:
        v = np.ones(self.n, bool) if valid is None else valid
        self.cols[name] = (values, v)

    def flag(self, name: str, p_true: float, p_null: float = 0.01) -> np.ndarray:
        vals = self.rng.random(self.n) < p_true
        self.put(name, vals, self.nulls(p_null))
        return vals


def _ymd(days: np.ndarray) -> np.ndarray:
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(int) + 1970
    m = d.astype("datetime64[M]").astype(int) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(int) + 1
    return (y * 10000 + m * 100 + day).astype(np.int64)


def make_batch(seed: int, index: int, n: int, as_of: dt.date) -> pa.RecordBatch:
    rng = np.random.default_rng([seed, index])
    b = Batch(rng, n, index * BATCH, as_of)
    Y = as_of.year
    asof_days = (as_of - EPOCH).days
    ids = np.array([f"SYN{b.start + i:010d}" for i in range(n)], dtype=object)
    b.put("entity_id", ids)
    b.put("as_of", np.full(n, as_of.year * 10000 + as_of.month * 100 + as_of.day, np.int64))

    # Registration: mostly old firms, some young, boundary 364/365/366 days.
    age = np.where(
        rng.random(n) < 0.8, rng.integers(3 * 365, 30 * 365, n), rng.integers(0, 3 * 365, n)
    )
    edge = rng.random(n)
    age = np.where(edge < 0.01, 365, np.where(edge < 0.015, 364, np.where(edge < 0.02, 366, age)))
    reg_days = asof_days - age
    reg_valid = b.nulls(0.004)
    reg_invalid = (rng.random(n) < 0.001) & reg_valid
    reg_valid &= ~reg_invalid
    reg = _ymd(reg_days)
    reg_year = reg // 10000
    b.put("registration_date", reg, reg_valid)
    b.put("registration_date_invalid", reg_invalid)
    b.put("registration_year", reg_year, reg_valid)
    b.put("days_since_registration", age.astype(np.int64), reg_valid)

    # Scope and flags.
    b.flag("registered_in_mainland", 0.985, 0.003)
    b.flag("resident_enterprise", 0.99, 0.003)
    b.flag("tech_field_supported", 0.85, 0.005)
    b.flag("major_incident_within_365d", 0.02, 0.003)
    b.flag("standards_participation", 0.2, 0.3)
    b.flag("accounting_sound", 0.95, 0.01)
    b.flag("audit_based_cit_collection", 0.9, 0.01)
    industries = np.array(
        [
            "software",
            "manufacturing",
            "wholesale_retail",
            "research_services",
            "real_estate",
            "information_transmission",
            "construction",
            "other",
        ],
        dtype=object,
    )
    b.put("industry", industries[rng.integers(0, len(industries), n)], b.nulls(0.01))
    b.flag("industry_restricted_or_eliminated", 0.01)
    b.flag("incident_or_misconduct_last_or_current_year", 0.01)
    b.flag("in_abnormal_operations_list", 0.02)
    b.flag("in_serious_dishonesty_list", 0.005)

    # IP counts (boundary 0, 1, 2/3, 4/5 Ⅱ类; a few negatives = invalid).
    c1 = rng.poisson(0.6, n).astype(np.int64)
    c2u = rng.poisson(2.5, n).astype(np.int64)
    neg = rng.random(n) < 0.0005
    c2u = np.where(neg, -1, c2u)
    b.put("ip_class1_count", c1, b.nulls(0.004))
    b.put("ip_class2_count_unused", c2u, b.nulls(0.004))
    used = rng.poisson(1.0, n).astype(np.int64)
    b.put("ip_class2_count_used_before", used, b.nulls(0.3))
    b.put("ip_class2_count", c2u.clip(0) + used, b.nulls(0.02))
    b.flag("ip_any_self_developed", 0.8, 0.2)

    # Expert scores: mostly absent; some given; a few out of range (invalid).
    for name, hi, lo in (
        ("expert_tech_advancement", 8, 0),
        ("expert_core_support", 8, 0),
        ("expert_ip_acquisition", 3, 1),
        ("expert_standards_bonus", 2, 0),
        ("expert_rd_org", 20, 0),
    ):
        given = rng.random(n) < 0.35
        val = rng.integers(max(lo, hi // 2), hi + 1, n).astype(np.int64)
        val = np.where(rng.random(n) < 0.001, hi + 1, val)
        b.put(name, val, given)

    # Direct qualification (tsme).
    cert_age = rng.integers(0, 4 * 365, n)
    has_cert = rng.random(n) < 0.15
    b.put("dq_hte_certificate_issue_date", _ymd(asof_days - cert_age), has_cert)
    b.put("dq_hte_certificate_issue_date_invalid", (rng.random(n) < 0.0005) & ~has_cert)
    b.flag("dq_national_sci_award_top3_within_5y", 0.01, 0.2)
    b.flag("dq_provincial_rd_institution", 0.05, 0.2)
    b.flag("dq_led_standard_within_5y", 0.02, 0.2)

    # R&D super deduction inputs.
    b.put("tax_year", np.full(n, Y - 1, np.int64), b.nulls(0.01))
    share = rng.random(n)
    b.put("manufacturing_revenue_share", (share * 10**12).astype(np.int64), b.nulls(0.05))
    b.put(
        "negative_list_revenue_share",
        ((rng.random(n) * 0.6) * 10**12).astype(np.int64),
        b.nulls(0.05),
    )
    b.flag("is_registered_tsme_for_year", 0.3)
    b.flag("is_ic_or_machine_tool_enterprise", 0.02)
    rde = (rng.lognormal(14, 1.2, n) * 100).astype(np.int64)
    b.put("rd_expense_expensed", rde, b.nulls(0.02))
    b.put("rd_intangible_cost", (rde * rng.random(n) * 0.3).astype(np.int64), b.nulls(0.05))
    by_period = rng.random(n) < 0.05
    b.put("rd_expense_expensed_by_period_present", by_period)
    b.put("rd_expensed_2022_jan_sep", (rde * 0.7).astype(np.int64), by_period)
    b.put("rd_expensed_2022_oct_dec", (rde * 0.3).astype(np.int64), by_period)

    # Voucher inputs.
    schemes = np.array(["shanghai_municipal", "district_service_voucher", "bogus"], dtype=object)
    b.put("scheme", schemes[rng.choice(3, n, p=[0.6, 0.395, 0.005])], b.nulls(0.01))
    applicants = np.array(["enterprise", "startup_team"], dtype=object)
    app = rng.choice(2, n, p=[0.85, 0.15])
    b.put("applicant_type", applicants[app], b.nulls(0.01))
    b.flag("registered_in_shanghai", 0.9)
    b.flag("is_tsme", 0.6)
    b.flag("team_company_registered", 0.3)
    b.flag("team_in_incubator_park_or_maker_space", 0.7)
    b.put("team_core_members", rng.integers(1, 12, n).astype(np.int64), b.nulls(0.02))
    order_days = asof_days - rng.integers(0, 4 * 365, n)
    b.put("order_date", _ymd(order_days), b.nulls(0.01))
    b.put("order_date_invalid", rng.random(n) < 0.0005)
    amount = (rng.lognormal(11.5, 1.0, n) * 100).astype(np.int64)
    amount = np.where(rng.random(n) < 0.002, 0, amount)
    b.put("contract_amount", amount, b.nulls(0.01))
    used_v = np.where(rng.random(n) < 0.7, 0, (rng.lognormal(11, 1.0, n) * 100).astype(np.int64))
    b.put("voucher_used_this_year", used_v, b.nulls(0.01))
    b.flag("service_provider_on_platform", 0.95)
    b.flag("service_category_eligible", 0.93)

    # District 免申即享 inputs: certificates and awards the commission holds.
    hte_valid = b.flag("hte_valid", 0.12, 0.005)
    first_age = rng.integers(0, 6 * 365, n)
    b.put("hte_first_certificate_issue_date", _ymd(asof_days - first_age), hte_valid)
    b.put("hte_first_certificate_issue_date_invalid", np.zeros(n, bool))
    lg_valid = b.flag("little_giant_valid", 0.03, 0.005)
    lg_age = rng.integers(0, 4 * 365, n)
    b.put("little_giant_certificate_issue_date", _ymd(asof_days - lg_age), lg_valid)
    b.put("little_giant_certificate_issue_date_invalid", np.zeros(n, bool))
    awards = np.where(rng.random(n) < 0.01, rng.integers(1, 3, n), 0).astype(np.int64)
    b.put("sh_sci_award_count", awards, b.nulls(0.01))
    won = awards > 0
    b.put("sh_sci_award_year", rng.integers(Y - 2, Y + 1, n).astype(np.int64), won)
    grades = np.array(["special", "first", "second", "third", "gold"], dtype=object)
    grade = grades[rng.choice(5, n, p=[0.05, 0.25, 0.35, 0.34, 0.01])]
    b.put("sh_sci_award_grade", grade, won & b.nulls(0.02))
    b.put("sh_sci_award_unit_rank", rng.integers(0, 4, n).astype(np.int64), won & b.nulls(0.02))

    # Financials over fy3 (Y-3) .. fy1 (Y-1): a growth path from a base size.
    base_sales = rng.lognormal(17.2, 1.4, n)  # median ~ 30M yuan
    growth = rng.normal(0.12, 0.2, (3, n))
    na_base = base_sales * rng.uniform(0.2, 1.5, n)
    na_growth = rng.normal(0.1, 0.25, (3, n))
    rd_ratio = rng.uniform(0.02, 0.15, n)
    dom_share = rng.uniform(0.5, 1.0, n)
    ht_share = rng.uniform(0.5, 1.0, n)
    staff = np.maximum(1, rng.lognormal(4.0, 1.0, n)).astype(np.int64)
    sci = rng.uniform(0.06, 0.5, n)
    conv_rate = rng.gamma(2.0, 1.5, n)
    sales_edge = rng.random(n)
    for k in (3, 2, 1):  # oldest first
        i = 3 - k
        present = reg_year <= Y - k  # a firm registered after Y-K has no record for it
        present = np.where(reg_valid, present, True) & (rng.random(n) >= 0.003)
        sales = base_sales * np.prod(1 + growth[: i + 1], axis=0)
        sales = np.where(rng.random(n) < 0.003, 0.0, sales)
        s_c = (sales * 100).astype(np.int64)
        if k == 1:  # tier boundaries on last-year sales
            s_c = np.where(sales_edge < 0.01, 5_000_000_000, s_c)
            s_c = np.where((sales_edge >= 0.01) & (sales_edge < 0.02), 20_000_000_000, s_c)
        rd_c = (s_c * rd_ratio).astype(np.int64)
        dom_c = (rd_c * dom_share).astype(np.int64)
        dom_c = np.where(rng.random(n) < 0.003, rd_c + 100, dom_c)  # invalid: > R&D
        dom_c = np.where(rng.random(n) < 0.02, (rd_c * 6) // 10, dom_c)  # exact 60 %
        na = na_base * np.prod(1 + na_growth[: i + 1], axis=0)
        assets_c = (np.abs(na) * rng.uniform(1.2, 3.0, n) * 100).astype(np.int64)
        liab_c = assets_c - (na * 100).astype(np.int64)
        liab_c = np.where(rng.random(n) < 0.02, assets_c + (assets_c // 10), liab_c)  # NA < 0
        liab_c = np.where(rng.random(n) < 0.003, assets_c, liab_c)  # NA = 0
        ti_c = (s_c * rng.uniform(1.0, 1.1, n)).astype(np.int64)
        ht_c = (ti_c * ht_share).astype(np.int64)
        ht_c = np.where(rng.random(n) < 0.02, (ti_c * 6) // 10, ht_c)
        ht_c = np.where(rng.random(n) < 0.002, ti_c + 100, ht_c)  # invalid
        st = (staff * rng.uniform(0.9, 1.1, n)).astype(np.int64)
        st = np.where(rng.random(n) < 0.002, 0, st)
        ss = (st * sci).astype(np.int64)
        ss = np.where(rng.random(n) < 0.02, st // 10, ss)
        ss = np.where(rng.random(n) < 0.002, st + 1, ss)
        conv = rng.poisson(conv_rate).astype(np.int64)
        p = f"fy{k}_"
        b.put(p + "present", present)

        def money(name: str, cents: np.ndarray, p: str = p, present: np.ndarray = present) -> None:
            cents = np.where(rng.random(n) < 0.0003, -np.abs(cents) - 1, cents)  # invalid
            b.put(p + name, cents, present & b.nulls(0.003))

        money("sales_revenue", s_c)
        money("rd_expense", rd_c)
        money("rd_expense_domestic", dom_c)
        money("total_assets", assets_c)
        money("total_liabilities", liab_c)
        money("total_income", ti_c)
        money("high_tech_income", ht_c)
        money("total_cost_expense", (s_c * rng.uniform(0.6, 1.1, n)).astype(np.int64))
        b.put(p + "staff_total", st * 100, present & b.nulls(0.003))  # number: DECIMAL(18,2)
        b.put(p + "staff_sci_tech", ss * 100, present & b.nulls(0.003))
        b.put(p + "conversions", conv, present & b.nulls(0.003))

    # Exact band edges for growth (values 100 / 115 / 132.25 -> r = 0.15 exactly) on 0.5 %.
    edge = rng.random(n) < 0.005
    for k, v in ((3, 10_000_00), (2, 11_500_00), (1, 13_225_00)):
        vals, valid = b.cols[f"fy{k}_sales_revenue"]
        b.cols[f"fy{k}_sales_revenue"] = (np.where(edge, v * 1000, vals), valid)
    schema = arrow_schema()
    arrays = []
    for f in schema:
        vals, valid = b.cols[f.name]
        arrays.append(_arr(vals, valid, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--as-of", default="2025-06-30")
    ap.add_argument("--out", default="benchmarks/out/facts_1m.parquet")
    ap.add_argument("--seed", type=int, default=20250630)
    args = ap.parse_args(argv)
    as_of = dt.date.fromisoformat(args.as_of)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    schema = arrow_schema()
    # A registry export as DuckDB itself writes one: amounts as 64-bit integers (DECIMAL
    # (18, 2)), snappy, dictionaries for text only. Reading it costs DuckDB ~20 % less than
    # pyarrow's defaults (zstd, 16-byte decimals, every column dictionary-encoded).
    texts = [f.name for f in schema if pa.types.is_string(f.type)]
    with pq.ParquetWriter(
        tmp, schema, compression="snappy", store_decimal_as_integer=True, use_dictionary=texts
    ) as w:
        done, index = 0, 0
        while done < args.rows:
            n = min(BATCH, args.rows - done)
            w.write_batch(make_batch(args.seed, index, n, as_of), row_group_size=BATCH)
            done += n
            index += 1
    tmp.replace(out)
    print(f"wrote {args.rows} rows to {out}")


if __name__ == "__main__":
    main()
