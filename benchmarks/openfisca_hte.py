"""hte (RULES.md §2) as an OpenFisca-core tax-benefit system, for the issue-4 comparison.

One person-like entity ``enterprise``; inputs are the flat facts row's hte columns;
formulas are numpy expressions per variable; thresholds are OpenFisca parameters.

OpenFisca has no NULL. Every nullable input is therefore loaded as two variables: the
value with NULL filled by the type's default (0 for amounts and counts, False for flags),
and a ``<name>_known`` boolean (False where the Parquet value was NULL). Invalid values
(RULES.md §2.2) are turned into "unknown" by the formulas, as in the policy pack.
Amounts are OpenFisca ``float`` variables, i.e. **float32** (OpenFisca's storage type):
ratios are computed by division in float32, as an OpenFisca model would write them, so
rows at an exact boundary (a ratio of exactly 60 %, a growth rate of exactly 0.15, sums
above 2**24 yuan) may decide differently from the exact-decimal engine: that is measured.

    python benchmarks/openfisca_hte.py benchmarks/out/facts_1m.parquet 2025-06-30 [out.parquet]

prints a JSON line with the time (load, build, calculate) and peak RSS of this process;
with an output path, also writes ``entity_id, verdict, total_min, total_max``.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from openfisca_core.entities import build_entity
from openfisca_core.parameters import ParameterNode
from openfisca_core.periods import YEAR
from openfisca_core.simulation_builder import SimulationBuilder
from openfisca_core.taxbenefitsystems import TaxBenefitSystem
from openfisca_core.variables import Variable

Enterprise = build_entity(
    key="enterprise", plural="enterprises", label="企业 enterprise", is_person=True
)
PERIOD = ["2025"]  # the application year (OpenFisca period of every variable)
VERDICTS = np.array(["ineligible", "needs_data", "needs_review", "eligible"], dtype=object)

FY_MONEY = (
    "sales_revenue",
    "rd_expense",
    "rd_expense_domestic",
    "total_assets",
    "total_liabilities",
)
INPUTS: dict[str, type] = {
    "days_since_registration": int,
    "registration_year": int,
    "registered_in_mainland": bool,
    "resident_enterprise": bool,
    "tech_field_supported": bool,
    "major_incident_within_365d": bool,
    "standards_participation": bool,
    "ip_class1_count": int,
    "ip_class2_count_unused": int,
    "ip_any_self_developed": bool,
    "expert_tech_advancement": int,
    "expert_core_support": int,
    "expert_ip_acquisition": int,
    "expert_standards_bonus": int,
    "expert_rd_org": int,
    "fy1_total_income": float,
    "fy1_high_tech_income": float,
    "fy1_staff_total": float,
    "fy1_staff_sci_tech": float,
    **{f"fy{k}_present": bool for k in (1, 2, 3)},
    **{f"fy{k}_{m}": float for k in (1, 2, 3) for m in FY_MONEY},
    **{f"fy{k}_conversions": int for k in (1, 2, 3)},
}


def _input(name: str, typ: type) -> list[type]:
    attrs = {"value_type": typ, "entity": Enterprise, "definition_period": YEAR, "label": name}
    return [
        type(name, (Variable,), attrs),
        type(name + "_known", (Variable,), {**attrs, "value_type": bool}),
    ]


def _var(name: str, typ: type, formula) -> type:
    return type(
        name,
        (Variable,),
        {
            "value_type": typ,
            "entity": Enterprise,
            "definition_period": YEAR,
            "label": name,
            "formula": formula,
        },
    )


def _g(e, name):
    return e(name, PERIOD[0])


def _known_value(e, name, valid=None):
    """(value, known) with invalid values counted as unknown."""
    v, k = _g(e, name), _g(e, name + "_known")
    return v, k if valid is None else k & valid


def _band(r):
    lo = np.select([r >= 0.35, r >= 0.25, r >= 0.15, r >= 0.05, r > 0], [9, 7, 5, 3, 1], 0)
    hi = np.select([r >= 0.35, r >= 0.25, r >= 0.15, r >= 0.05, r > 0], [10, 8, 6, 4, 2], 0)
    return lo, hi


def _div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1), 0)


def build_system() -> TaxBenefitSystem:
    tbs = TaxBenefitSystem([Enterprise])
    tbs.parameters = ParameterNode(
        "",
        data={
            "hte": {
                "days_min": {"values": {"2016-01-01": 365}},
                "tier1_sales": {"values": {"2016-01-01": 50_000_000}},
                "tier2_sales": {"values": {"2016-01-01": 200_000_000}},
                "rd_ratio": {"values": {"2016-01-01": 0.05}},
                "rd_ratio_mid": {"values": {"2016-01-01": 0.04}},
                "rd_ratio_large": {"values": {"2016-01-01": 0.03}},
                "domestic_share": {"values": {"2016-01-01": 0.6}},
                "high_tech_share": {"values": {"2016-01-01": 0.6}},
                "staff_share": {"values": {"2016-01-01": 0.1}},
                "pass_mark": {"values": {"2016-01-01": 70}},
            }
        },
    )
    Y = [None]  # application year, set by run()

    for name, typ in INPUTS.items():
        for v in _input(name, typ):
            tbs.add_variable(v)

    def window(e, period, parameters):
        reg_known = _g(e, "registration_year_known")
        ry = _g(e, "registration_year")
        ws = []
        for k in (1, 2, 3):
            pres = _g(e, f"fy{k}_present") & _g(e, f"fy{k}_present_known")
            ws.append(np.where(reg_known, ry <= Y[0] - k, pres))
        return ws[0] * 1 + ws[1] * 2 + ws[2] * 4  # bitmask: fy1 = 1, fy2 = 2, fy3 = 4

    def fy(e, k, m):
        v, kn = _known_value(e, f"fy{k}_{m}")
        kn = kn & (v >= 0)
        if m == "rd_expense_domestic":
            kn = kn & (v <= _g(e, f"fy{k}_rd_expense"))
        return v, kn

    def sums(e, m):
        w = _g(e, "hte_window")
        tot = np.zeros(e.count, np.float32)
        known = np.ones(e.count, bool)
        for k in (1, 2, 3):
            inw = (w & (1 << (k - 1))) > 0
            v, kn = fy(e, k, m)
            tot = tot + np.where(inw, v, 0)
            known &= ~inw | kn
        return tot, known

    def window_gap(e, period, parameters):
        w = _g(e, "hte_window")
        gap = np.zeros(e.count, bool)
        for k in (1, 2, 3):
            inw = (w & (1 << (k - 1))) > 0
            for m in (*FY_MONEY, "conversions"):
                if m == "conversions":
                    v, kn = _known_value(e, f"fy{k}_conversions")
                    kn = kn & (v >= 0)
                elif m in ("total_assets", "total_liabilities"):
                    v, kn = fy(e, k, m)
                else:
                    v, kn = fy(e, k, m)
                gap |= inw & ~kn
        return gap

    def last_year(e):
        ti, tik = _known_value(e, "fy1_total_income")
        tik &= ti >= 0
        ht, htk = _known_value(e, "fy1_high_tech_income")
        htk &= (ht >= 0) & (ht <= ti)
        st, stk = _known_value(e, "fy1_staff_total")
        stk &= st > 0
        sci, scik = _known_value(e, "fy1_staff_sci_tech")
        scik &= (sci >= 0) & (sci <= st)
        return ti, tik, ht, htk, st, stk, sci, scik

    def ip_counts(e):
        c1, c1k = _known_value(e, "ip_class1_count")
        c2, c2k = _known_value(e, "ip_class2_count_unused")
        return c1, c1k & (c1 >= 0), c2, c2k & (c2 >= 0)

    def experts(e):
        sd, sdk = _known_value(e, "ip_any_self_developed")
        acq_hi = np.where(sdk & ~sd, 3, 6)
        out, invalid = {}, np.zeros(e.count, bool)
        for name, lo, hi in (
            ("tech_advancement", 0, 8),
            ("core_support", 0, 8),
            ("ip_acquisition", 1, acq_hi),
            ("standards_bonus", 0, 2),
            ("rd_org", 0, 20),
        ):
            v, k = _known_value(e, "expert_" + name)
            ok = (v >= lo) & (v <= hi)
            invalid |= k & ~ok
            out[name] = (v, k & ok)
        return out, invalid

    def hard(e, period, parameters):
        """Three-valued hard and scope conditions: 0 false, 1 true, 2 unknown; min over all."""
        p = parameters(f"{Y[0]}-01-01").hte
        conds = []

        def tv(value, known):
            return np.where(known, value.astype(np.int8), 2)

        d, dk = _known_value(e, "days_since_registration")
        conds.append(tv(d >= p.days_min, dk))
        c1, c1k, c2, c2k = ip_counts(e)
        some = (c1k & (c1 >= 1)) | (c2k & (c2 >= 1))
        conds.append(np.where(some, 1, np.where(c1k & c2k, 0, 2)))
        for flag in ("tech_field_supported", "registered_in_mainland", "resident_enterprise"):
            v, k = _known_value(e, flag)
            conds.append(tv(v, k))
        v, k = _known_value(e, "major_incident_within_365d")
        conds.append(tv(~v, k))
        ti, tik, ht, htk, st, stk, sci, scik = last_year(e)
        conds.append(tv(_div(sci, st) >= p.staff_share, stk & scik))
        s, sk = sums(e, "sales_revenue")
        rd, rdk = sums(e, "rd_expense")
        dom, domk = sums(e, "rd_expense_domestic")
        s1, s1k = fy(e, 1, "sales_revenue")
        req = np.where(
            s1 <= p.tier1_sales,
            p.rd_ratio,
            np.where(s1 <= p.tier2_sales, p.rd_ratio_mid, p.rd_ratio_large),
        )
        rd_ok = tv(_div(rd, s) >= req, sk & rdk & s1k)
        conds.append(np.where(sk & (s == 0), 0, rd_ok))
        dom_ok = tv(_div(dom, rd) >= p.domestic_share, rdk & domk)
        conds.append(np.where(rdk & (rd == 0), 0, dom_ok))
        ht_ok = tv(_div(ht, ti) >= p.high_tech_share, tik & htk)
        conds.append(np.where(tik & (ti == 0), 0, ht_ok))
        all_conds = np.stack(conds)
        return np.where((all_conds == 0).any(0), 0, np.where((all_conds == 2).any(0), 2, 1))

    def gap(e, period, parameters):
        rk = _g(e, "registration_year_known")
        g = ~rk | _g(e, "hte_window_gap")
        for flag in (
            "registered_in_mainland",
            "resident_enterprise",
            "tech_field_supported",
            "major_incident_within_365d",
        ):
            g |= ~_g(e, flag + "_known")
        _, c1k, _, c2k = ip_counts(e)
        _, tik, _, htk, _, stk, _, scik = last_year(e)
        _, invalid = experts(e)
        return g | ~c1k | ~c2k | ~tik | ~htk | ~stk | ~scik | invalid

    def ip_range(e):
        c1, c1k, c2, c2k = ip_counts(e)
        ex, _ = experts(e)
        sd, sdk = _known_value(e, "ip_any_self_developed")
        sp, spk = _known_value(e, "standards_participation")
        lo = np.zeros(e.count, np.int32)
        hi = np.zeros(e.count, np.int32)
        for name in ("tech_advancement", "core_support"):
            v, k = ex[name]
            lo += np.where(k, v, 0)
            hi += np.where(k, v, 8)
        a = c1k & (c1 >= 1)
        unk = ~c1k | ~c2k
        lo += np.select([a, unk, c2 >= 5, c2 >= 3, c2 >= 1], [7, 0, 5, 3, 1], 0)
        hi += np.select([a, unk, c2 >= 5, c2 >= 3, c2 >= 1], [8, 8, 6, 4, 2], 0)
        some = a | (c2k & (c2 >= 1))
        none = c1k & c2k & (c1 == 0) & (c2 == 0)
        v, k = ex["ip_acquisition"]
        lo += np.where(k, v, np.where(some, 1, 0))
        hi += np.where(k, v, np.where(none & ~some, 0, np.where(sdk & ~sd, 3, 6)))
        v, k = ex["standards_bonus"]
        lo += np.where(k, v, np.where(spk & sp, 1, 0))
        hi += np.where(k, v, np.where(spk & ~sp, 0, 2))
        return np.minimum(30, lo), np.minimum(30, hi)

    def conversion(e):
        w = _g(e, "hte_window")
        n = ((w & 1) > 0) * 1 + ((w & 2) > 0) * 1 + ((w & 4) > 0) * 1
        tot = np.zeros(e.count, np.int64)
        known = np.ones(e.count, bool)
        for k in (1, 2, 3):
            inw = (w & (1 << (k - 1))) > 0
            v, kn = _known_value(e, f"fy{k}_conversions")
            tot += np.where(inw, v, 0)
            known &= ~inw | (kn & (v >= 0))

        def band(d):
            conds = [tot >= 5 * d, tot >= 4 * d, tot >= 3 * d, tot >= 2 * d, tot >= d]
            lo = np.select(conds, [25, 19, 13, 7, 1], 0)
            hi = np.select(conds + [tot > 0], [30, 24, 18, 12, 6, 6], 0)
            return lo, hi

        ln, hn = band(np.maximum(n, 1))
        l3, h3 = band(3)
        lo = np.where(n == 0, 0, np.where(known, np.minimum(ln, l3), 0))
        hi = np.where(n == 0, 0, np.where(known, np.maximum(hn, h3), 30))
        return lo, hi

    def growth(e, values):
        w = _g(e, "hte_window")
        n = ((w & 1) > 0) * 1 + ((w & 2) > 0) * 1 + ((w & 4) > 0) * 1
        (x1, k1), (x2, k2), (x3, k3) = values  # fy1 (newest), fy2, fy3
        # three years: v1 = fy3, v2 = fy2, v3 = fy1; two years: oldest / newest in window
        v1, v2, v3 = x3, x2, x1
        a = np.where(w & 4, x3, x2)
        b = np.where(w & 1, x1, x2)
        ka = np.where(w & 4, k3, k2)
        kb = np.where(w & 1, k1, k2)
        lit = 0.5 * (_div(v2, v1) + _div(v3, v2)) - 1
        A = _band(lit)
        B = _band(_div(v3, v2) - 1)
        C = _band(_div(b, a) - 1)
        lo3 = np.select(
            [v2 == 0, v1 == 0, (v1 > 0) & (v2 > 0), (v1 < 0) & (v2 > 0)],
            [0, np.where(v2 < 0, 0, B[0]), A[0], np.minimum(A[0], B[0])],
            0,
        )
        hi3 = np.select(
            [v2 == 0, v1 == 0, (v1 > 0) & (v2 > 0), (v1 < 0) & (v2 > 0)],
            [0, B[1], A[1], np.maximum(A[1], B[1])],
            A[1],
        )
        lo2 = np.where(a > 0, C[0], 0)
        hi2 = np.where(a == 0, 0, C[1])
        known3 = k1 & k2 & k3
        known2 = ka & kb
        lo = np.select(
            [n <= 1, (n == 3) & ~known3, (n == 2) & ~known2, n == 3], [0, 0, 0, lo3], lo2
        )
        hi = np.select(
            [n <= 1, (n == 3) & ~known3, (n == 2) & ~known2, n == 3], [0, 10, 10, hi3], hi2
        )
        return lo, hi

    def net_assets(e, k):
        ta, tak = fy(e, k, "total_assets")
        tl, tlk = fy(e, k, "total_liabilities")
        return ta - tl, tak & tlk

    def total_range(e, period, parameters):
        il, ih = ip_range(e)
        cl, ch = conversion(e)
        ex, _ = experts(e)
        v, k = ex["rd_org"]
        ol, oh = np.where(k, v, 0), np.where(k, v, 20)
        nl, nh = growth(e, [net_assets(e, k) for k in (1, 2, 3)])
        sl, sh = growth(e, [fy(e, k, "sales_revenue") for k in (1, 2, 3)])
        return np.stack([il + cl + ol + nl + sl, ih + ch + oh + nh + sh]).astype(np.int32)

    cache: dict[int, np.ndarray] = {}

    def total_min(e, period, parameters):
        pair = total_range(e, period, parameters)
        cache[id(e)] = pair[1]
        return pair[0]

    def total_max(e, period, parameters):
        _g(e, "hte_total_min")
        return cache.pop(id(e))

    def verdict(e, period, parameters):
        p = parameters(f"{Y[0]}-01-01").hte
        h = _g(e, "hte_hard")
        lo, hi = _g(e, "hte_total_min"), _g(e, "hte_total_max")
        inel = (h == 0) | (hi <= p.pass_mark)
        nd = (h == 2) | _g(e, "hte_gap")
        return np.select([inel, nd, lo > p.pass_mark], [0, 1, 3], 2)

    tbs.add_variable(_var("hte_window", int, window))
    tbs.add_variable(_var("hte_window_gap", bool, window_gap))
    tbs.add_variable(_var("hte_hard", int, hard))
    tbs.add_variable(_var("hte_gap", bool, gap))
    tbs.add_variable(_var("hte_verdict", int, verdict))
    tbs.add_variable(_var("hte_total_min", int, total_min))
    tbs.add_variable(_var("hte_total_max", int, total_max))
    tbs.Y = Y
    return tbs


def run(path: str, as_of: dt.date, out: str | None = None) -> dict:
    t0 = time.perf_counter()
    table = pq.read_table(path, columns=["entity_id", *(n for n in INPUTS)])
    n = table.num_rows
    t1 = time.perf_counter()
    tbs = build_system()
    tbs.Y[0] = as_of.year
    PERIOD[0] = str(as_of.year)
    sim = SimulationBuilder().build_default_simulation(tbs, count=n)
    for name, typ in INPUTS.items():
        col = table.column(name)
        known = pc.is_valid(col).to_numpy(zero_copy_only=False)
        if pa.types.is_decimal(col.type):
            col = pc.cast(col, pa.float64())
        arr = pc.fill_null(col, False if typ is bool else 0).to_numpy(zero_copy_only=False)
        sim.set_input(name, PERIOD[0], arr)
        sim.set_input(name + "_known", PERIOD[0], known)
    ids = table.column("entity_id")
    del table
    t2 = time.perf_counter()
    verdict = sim.calculate("hte_verdict", PERIOD[0])
    t3 = time.perf_counter()
    if out:
        pq.write_table(
            pa.table(
                {
                    "entity_id": ids,
                    "verdict": VERDICTS[verdict].tolist(),
                    "total_min": sim.calculate("hte_total_min", PERIOD[0]),
                    "total_max": sim.calculate("hte_total_max", PERIOD[0]),
                }
            ),
            out,
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "rows": n,
        "load_s": t1 - t0,
        "build_s": t2 - t1,
        "calculate_s": t3 - t2,
        "total_s": t3 - t0,
        "peak_rss_bytes": peak,
    }


if __name__ == "__main__":
    print(
        json.dumps(
            run(
                sys.argv[1],
                dt.date.fromisoformat(sys.argv[2]),
                sys.argv[3] if len(sys.argv) > 3 else None,
            )
        )
    )
