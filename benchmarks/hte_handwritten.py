"""hte (RULES.md §2, 高新技术企业认定) written by hand as one DuckDB query.

The anchor for the compiler-overhead figure: what a careful engineer would write by hand
over the flat facts row (docs/facts-row.md), with the same semantics as the policy pack —
NULL is unknown, invalid inputs are unknown, exact decimal comparisons (ratios are
cross-multiplied, never divided), interval scores, the §2.11 verdict. It returns
``entity_id, verdict, total_min, total_max``.

    python benchmarks/hte_handwritten.py benchmarks/out/facts_1m.parquet 2025-06-30
"""

from __future__ import annotations

import datetime as dt
import sys

_THRESHOLDS = ((1.35, 9, 10), (1.25, 7, 8), (1.15, 5, 6), (1.05, 3, 4))


def _band(n: str, d: str, c: int) -> tuple[str, str]:
    """Growth band [min, max] of r where r >= t  <=>  N/D >= c*(1+t) (exact, D != 0)."""
    lhs = f"({n}) * sign({d})"
    rhs = f"abs({d})"
    lo = " ".join(f"WHEN {lhs} >= {c * q:.2f} * {rhs} THEN {a}" for q, a, _ in _THRESHOLDS)
    hi = " ".join(f"WHEN {lhs} >= {c * q:.2f} * {rhs} THEN {b}" for q, _, b in _THRESHOLDS)
    return (
        f"CASE {lo} WHEN {lhs} > {c} * {rhs} THEN 1 ELSE 0 END",
        f"CASE {hi} WHEN {lhs} > {c} * {rhs} THEN 2 ELSE 0 END",
    )


def _growth(v: str) -> str:
    """Columns {v}_min, {v}_max of the growth item for value v ('na' or 's'), §2.9."""
    a_lo, a_hi = _band(f"{v}2 * {v}2 + {v}1 * {v}3", f"{v}1 * {v}2", 2)  # ½(v2/v1+v3/v2)−1
    b_lo, b_hi = _band(f"{v}3", f"{v}2", 1)  # v3/v2 − 1
    c_lo, c_hi = _band(f"{v}b", f"{v}a", 1)  # two years: vb/va − 1
    return f"""
      CASE WHEN n <= 1 THEN 0
           WHEN n = 3 AND ({v}1 IS NULL OR {v}2 IS NULL OR {v}3 IS NULL) THEN 0
           WHEN n = 2 AND ({v}a IS NULL OR {v}b IS NULL) THEN 0
           WHEN n = 3 THEN CASE
             WHEN {v}2 = 0 THEN 0
             WHEN {v}1 = 0 THEN CASE WHEN {v}2 < 0 THEN 0 ELSE {b_lo} END
             WHEN {v}1 > 0 AND {v}2 > 0 THEN {a_lo}
             WHEN {v}1 < 0 AND {v}2 > 0 THEN least({a_lo}, {b_lo})
             ELSE 0 END
           ELSE CASE WHEN {v}a > 0 THEN {c_lo} ELSE 0 END
      END AS {v}_min,
      CASE WHEN n <= 1 THEN 0
           WHEN n = 3 AND ({v}1 IS NULL OR {v}2 IS NULL OR {v}3 IS NULL) THEN 10
           WHEN n = 2 AND ({v}a IS NULL OR {v}b IS NULL) THEN 10
           WHEN n = 3 THEN CASE
             WHEN {v}2 = 0 THEN 0
             WHEN {v}1 = 0 THEN {b_hi}
             WHEN {v}1 > 0 AND {v}2 > 0 THEN {a_hi}
             WHEN {v}1 < 0 AND {v}2 > 0 THEN greatest({a_hi}, {b_hi})
             ELSE {a_hi} END
           ELSE CASE WHEN {v}a = 0 THEN 0 ELSE {c_hi} END
      END AS {v}_max"""


def handwritten_sql(source: str, as_of: dt.date) -> str:
    """The hte query over ``source`` (a table name or ``read_parquet('…')``)."""
    y = as_of.year
    per_year = []
    for k in (1, 2, 3):
        p = f"fy{k}_"
        per_year.append(f"""
      CASE WHEN registration_date IS NOT NULL THEN registration_year <= {y - k}
           ELSE coalesce({p}present, FALSE) END AS w{k},
      -- 38 digits: the growth rates multiply two amounts (18 digits each)
      CASE WHEN {p}sales_revenue >= 0 THEN {p}sales_revenue::DECIMAL(38,2) END AS s{k},
      CASE WHEN {p}rd_expense >= 0 THEN {p}rd_expense END AS rd{k},
      CASE WHEN {p}rd_expense_domestic >= 0 AND {p}rd_expense_domestic <= {p}rd_expense
           THEN {p}rd_expense_domestic END AS dom{k},
      CASE WHEN {p}total_assets >= 0 AND {p}total_liabilities >= 0
           THEN {p}total_assets::DECIMAL(38,2) - {p}total_liabilities END AS na{k},
      CASE WHEN {p}conversions >= 0 THEN {p}conversions END AS cv{k}""")
    wsum = "({0}) + ({1}) + ({2})"

    def over_window(x: str) -> str:
        return wsum.format(*(f"CASE WHEN w{k} THEN {x}{k} ELSE 0 END" for k in (3, 2, 1)))

    def window_known(x: str) -> str:
        return " AND ".join(f"(NOT w{k} OR {x}{k} IS NOT NULL)" for k in (3, 2, 1))

    return f"""
WITH base AS (
  SELECT entity_id, days_since_registration, registration_date, registration_date_invalid,
    registered_in_mainland, resident_enterprise, tech_field_supported,
    major_incident_within_365d, standards_participation, ip_any_self_developed,
    CASE WHEN ip_class1_count >= 0 THEN ip_class1_count END AS c1,
    CASE WHEN ip_class2_count_unused >= 0 THEN ip_class2_count_unused END AS c2,
    CASE WHEN fy1_total_income >= 0 THEN fy1_total_income END AS ti,
    CASE WHEN fy1_high_tech_income >= 0 AND fy1_high_tech_income <= fy1_total_income
         THEN fy1_high_tech_income END AS ht,
    CASE WHEN fy1_staff_total > 0 THEN fy1_staff_total END AS st,
    CASE WHEN fy1_staff_sci_tech >= 0 AND fy1_staff_sci_tech <= fy1_staff_total
         THEN fy1_staff_sci_tech END AS sci,
    CASE WHEN expert_tech_advancement BETWEEN 0 AND 8 THEN expert_tech_advancement END AS e_tech,
    CASE WHEN expert_core_support BETWEEN 0 AND 8 THEN expert_core_support END AS e_core,
    CASE WHEN expert_ip_acquisition BETWEEN 1
              AND (CASE WHEN ip_any_self_developed IS FALSE THEN 3 ELSE 6 END)
         THEN expert_ip_acquisition END AS e_acq,
    CASE WHEN expert_standards_bonus BETWEEN 0 AND 2 THEN expert_standards_bonus END AS e_std,
    CASE WHEN expert_rd_org BETWEEN 0 AND 20 THEN expert_rd_org END AS e_org,
    (expert_tech_advancement IS NOT NULL AND NOT expert_tech_advancement BETWEEN 0 AND 8)
     OR (expert_core_support IS NOT NULL AND NOT expert_core_support BETWEEN 0 AND 8)
     OR (expert_ip_acquisition IS NOT NULL AND NOT expert_ip_acquisition BETWEEN 1
         AND (CASE WHEN ip_any_self_developed IS FALSE THEN 3 ELSE 6 END))
     OR (expert_standards_bonus IS NOT NULL AND NOT expert_standards_bonus BETWEEN 0 AND 2)
     OR (expert_rd_org IS NOT NULL AND NOT expert_rd_org BETWEEN 0 AND 20) AS expert_invalid,
    {",".join(per_year)}
  FROM {source}
), win AS (
  SELECT *,
    w1::INT + w2::INT + w3::INT AS n,
    CASE WHEN {window_known("s")} THEN {over_window("s")} END AS sum_s,
    CASE WHEN {window_known("rd")} THEN {over_window("rd")} END AS sum_rd,
    CASE WHEN {window_known("dom")} THEN {over_window("dom")} END AS sum_dom,
    CASE WHEN {window_known("cv")} THEN {over_window("cv")} END AS sum_cv,
    CASE WHEN w3 THEN na3 ELSE na2 END AS naa, CASE WHEN w1 THEN na1 ELSE na2 END AS nab,
    CASE WHEN w3 THEN s3 ELSE s2 END AS sa, CASE WHEN w1 THEN s1 ELSE s2 END AS sb,
    NOT ({window_known("s")} AND {window_known("rd")} AND {window_known("dom")}
         AND {window_known("na")} AND {window_known("cv")}) AS window_gap
  FROM base
), cond AS (
  SELECT entity_id,
    days_since_registration >= 365 AS c_reg,
    (c1 >= 1 OR c2 >= 1) AS c_ip,
    tech_field_supported AS c_field,
    sci * 10 >= st AS c_staff,
    CASE WHEN sum_s = 0 THEN FALSE
         WHEN sum_s IS NULL OR sum_rd IS NULL OR s1 IS NULL THEN NULL
         ELSE sum_rd >= (CASE WHEN s1 <= 50000000 THEN 0.05 WHEN s1 <= 200000000 THEN 0.04
                              ELSE 0.03 END) * sum_s END AS c_rd,
    CASE WHEN sum_rd = 0 THEN FALSE WHEN sum_rd IS NULL OR sum_dom IS NULL THEN NULL
         ELSE sum_dom >= 0.6 * sum_rd END AS c_dom,
    CASE WHEN ti = 0 THEN FALSE WHEN ti IS NULL OR ht IS NULL THEN NULL
         ELSE ht >= 0.6 * ti END AS c_ht,
    NOT major_incident_within_365d AS c_inc,
    registered_in_mainland AS c_mainland, resident_enterprise AS c_resident,
    registration_date IS NULL OR registered_in_mainland IS NULL OR resident_enterprise IS NULL
      OR tech_field_supported IS NULL OR major_incident_within_365d IS NULL
      OR c1 IS NULL OR c2 IS NULL OR ti IS NULL OR ht IS NULL OR st IS NULL OR sci IS NULL
      OR window_gap OR expert_invalid AS gap,
    -- IP indicator (§2.7)
    coalesce(e_tech, 0) + coalesce(e_core, 0)
      + CASE WHEN c1 >= 1 THEN 7 WHEN c1 IS NULL OR c2 IS NULL THEN 0 WHEN c2 >= 5 THEN 5
             WHEN c2 >= 3 THEN 3 WHEN c2 >= 1 THEN 1 ELSE 0 END
      + CASE WHEN e_acq IS NOT NULL THEN e_acq WHEN (c1 >= 1 OR c2 >= 1) THEN 1 ELSE 0 END
      + CASE WHEN e_std IS NOT NULL THEN e_std WHEN standards_participation THEN 1 ELSE 0 END
      AS ip_lo,
    coalesce(e_tech, 8) + coalesce(e_core, 8)
      + CASE WHEN c1 >= 1 THEN 8 WHEN c1 IS NULL OR c2 IS NULL THEN 8 WHEN c2 >= 5 THEN 6
             WHEN c2 >= 3 THEN 4 WHEN c2 >= 1 THEN 2 ELSE 0 END
      + CASE WHEN e_acq IS NOT NULL THEN e_acq
             WHEN c1 = 0 AND c2 = 0 THEN 0
             WHEN ip_any_self_developed IS FALSE THEN 3 ELSE 6 END
      + CASE WHEN e_std IS NOT NULL THEN e_std WHEN standards_participation IS FALSE THEN 0
             ELSE 2 END
      AS ip_hi,
    -- conversion (§2.8): hull of band(T/n) and band(T/3)
    CASE WHEN n = 0 THEN 0 WHEN sum_cv IS NULL THEN 0 ELSE least(
      CASE WHEN sum_cv >= 5 * n THEN 25 WHEN sum_cv >= 4 * n THEN 19 WHEN sum_cv >= 3 * n THEN 13
           WHEN sum_cv >= 2 * n THEN 7 WHEN sum_cv >= n THEN 1 ELSE 0 END,
      CASE WHEN sum_cv >= 15 THEN 25 WHEN sum_cv >= 12 THEN 19 WHEN sum_cv >= 9 THEN 13
           WHEN sum_cv >= 6 THEN 7 WHEN sum_cv >= 3 THEN 1 ELSE 0 END) END AS cv_lo,
    CASE WHEN n = 0 THEN 0 WHEN sum_cv IS NULL THEN 30 ELSE greatest(
      CASE WHEN sum_cv >= 5 * n THEN 30 WHEN sum_cv >= 4 * n THEN 24 WHEN sum_cv >= 3 * n THEN 18
           WHEN sum_cv >= 2 * n THEN 12 WHEN sum_cv > 0 THEN 6 ELSE 0 END,
      CASE WHEN sum_cv >= 15 THEN 30 WHEN sum_cv >= 12 THEN 24 WHEN sum_cv >= 9 THEN 18
           WHEN sum_cv >= 6 THEN 12 WHEN sum_cv > 0 THEN 6 ELSE 0 END) END AS cv_hi,
    coalesce(e_org, 0) AS org_lo, coalesce(e_org, 20) AS org_hi,
    {_growth_cols()}
  FROM win
), total AS (
  SELECT *,
    least(30, ip_lo) + cv_lo + org_lo + na_min + s_min AS total_min,
    least(30, ip_hi) + cv_hi + org_hi + na_max + s_max AS total_max
  FROM cond
)
SELECT entity_id,
  CASE WHEN c_reg IS FALSE OR c_ip IS FALSE OR c_field IS FALSE OR c_staff IS FALSE
            OR c_rd IS FALSE OR c_dom IS FALSE OR c_ht IS FALSE OR c_inc IS FALSE
            OR c_mainland IS FALSE OR c_resident IS FALSE OR total_max <= 70 THEN 'ineligible'
       WHEN c_reg IS NULL OR c_ip IS NULL OR c_field IS NULL OR c_staff IS NULL
            OR c_rd IS NULL OR c_dom IS NULL OR c_ht IS NULL OR c_inc IS NULL
            OR c_mainland IS NULL OR c_resident IS NULL OR gap THEN 'needs_data'
       WHEN total_min >= 71 THEN 'eligible'
       ELSE 'needs_review' END AS verdict,
  total_min, total_max
FROM total
"""


def _growth_cols() -> str:
    # na1..na3 / s1..s3 are per fiscal year (fy3 oldest); for n = 3 the window is fy3, fy2,
    # fy1 -> v1 = fy3 … v3 = fy1, so the names are swapped into oldest-first order here.
    out = []
    for v, src in (("na", "na"), ("s", "s")):
        g = _growth(v)
        g = (
            g.replace(f"{v}1", "§1")
            .replace(f"{v}3", f"{src}1")
            .replace("§1", f"{src}3")
            .replace(f"{v}a", f"{src}a")
            .replace(f"{v}b", f"{src}b")
        )
        out.append(g)
    return ",".join(out)


if __name__ == "__main__":
    import duckdb

    path, day = sys.argv[1], dt.date.fromisoformat(sys.argv[2])
    con = duckdb.connect()
    sql = handwritten_sql(f"read_parquet('{path}')", day)
    print(con.sql(f"SELECT verdict, count(*) FROM ({sql}) GROUP BY 1 ORDER BY 1"))
