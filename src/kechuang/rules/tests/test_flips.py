"""Property test of the "flip": the smallest change that would make a failing criterion pass.

For random enterprises of each policy (the generators of ``test_differential``), every
criterion of ``evaluate(...).to_dict()["trace"]["criteria"]`` that carries a flip is checked
against what ``explain/counterfactual.py`` promises:

1. a flip is offered only for a criterion that failed (outcome false) and is a requirement
   (``evaluate_row`` only asks for one then; an exclusion or classification never gets one);
2. applying the change(s) it names makes the criterion pass (outcome true). An input's
   change is applied to the nested facts, which are evaluated again; a derived value's
   change (e.g. ``rd_sum``) is applied "everything else unchanged" (the module docstring),
   i.e. the derived value is replaced by its changed value in an otherwise identical
   evaluation; a labelled sum is in addition applied to the facts, through one input it adds up;
3. the change is the smallest in its unit: for a value that moves in whole steps (fen for
   money, 0.01 for a number, 1 for a count; ``SCALES``), the same change one step smaller
   does not make it pass; for a date, the day before the bound (after it, when lowering)
   does not make it pass.

Compound criteria (``a AND b``) report each failing comparison: all changes are applied
together, and each one, one step smaller with the others in full, must not be enough.

A conjunction that is FALSE with some other conjunct unknown (absent or invalid) gets no
flip: fixing its false comparisons would leave it unknown, not passing. This test found
that (the flip used to cover the false parts only); ``KNOWN`` keeps the smallest examples.

Not checked, on purpose (see the comments in ``_target`` and ``check_flips``): a subject of
unknown unit (no exact value to apply, no unit to be one smaller by), and a flip naming
the same subject twice. Neither occurs in these four policies today; no date flip occurs
in them either (the date branch is exercised by district_hte_first_reward only).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from kechuang.rules import evaluate, flatten, get_policy
from kechuang.rules.explain.evaluate import Evaluator
from kechuang.rules.facts import COLUMNS_BY_NAME, SCALES, date_int
from kechuang.rules.tests.test_differential import _as_of_dates, _set, enterprise

POLICIES = ["hte", "tsme", "rd_super_deduction", "voucher"]
EXAMPLES = 100  # per policy; the whole file runs well under a minute

#: Flat columns that are not set in the nested facts themselves but computed from a date.
_FROM_REGISTRATION = {"days_since_registration"}


# ------------------------------------------------------------------ reading a flip
def _exact_amount(change: dict) -> Decimal:
    """The exact size of a numeric change. ``by`` is a float (it cannot hold every amount
    of fen exactly past 2**53 fen); the texts carry the same amount as an exact decimal
    at the unit's places (``_decimal_text``). The two must agree."""
    match = re.search(r"(?:at least|more than) ([0-9,]+(?:\.[0-9]+)?)$", change["text_en"])
    assert match, f"no amount in {change['text_en']!r}"
    amount = Decimal(match.group(1).replace(",", ""))
    assert float(amount) == change["by"], (amount, change["by"])
    return amount


def _step(change: dict) -> Decimal | None:
    """The unit the change moves by, or None when counterfactual.py does not know it."""
    places = SCALES.get(change["unit"]) if change["unit"] else None
    return None if places is None else Decimal(1).scaleb(-places)


# ------------------------------------------------------------------ applying a flip
class _Overridden(Evaluator):
    """An evaluation in which some derived values are replaced, everything else unchanged."""

    def __init__(self, policy, row, as_of, overrides: dict[str, Any]) -> None:
        self._overrides = overrides
        super().__init__(policy, row, as_of)

    def lookup(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        return super().lookup(name)


def _current(policy, row: dict, as_of: dt.date, subject: str) -> Fraction:
    value = Evaluator(policy, row, as_of).lookup(subject)
    assert value is not None and not isinstance(value, bool | str), (subject, value)
    return Fraction(value)


def _moved(current: Fraction, change: dict, amount: Decimal) -> Fraction:
    return (
        current + Fraction(amount)
        if change["direction"] == "increase"
        else current - Fraction(amount)
    )


def _with_input(facts: dict, as_of: dt.date, name: str, value: Fraction) -> dict:
    """The nested facts with flat input ``name`` at ``value``."""
    changed = copy.deepcopy(facts)
    if name in _FROM_REGISTRATION:
        # days_since_registration = (as_of - registration_date).days: move the date.
        assert value.denominator == 1
        _set(changed, "registration_date", (as_of - dt.timedelta(days=int(value))).isoformat())
        return changed
    col = COLUMNS_BY_NAME[name]
    if col.type == "date":
        n = int(value)
        new: Any = dt.date(n // 10000, n // 100 % 100, n % 100).isoformat()
    else:
        new = Decimal(value.numerator) / Decimal(value.denominator)
        if col.type == "count":
            new = int(new)
    _set(changed, col.nested_path(as_of), new)
    return changed


def _sum_terms(policy, row: dict, as_of: dt.date, name: str) -> list[str]:
    """The inputs a labelled sum adds up in this evaluation (``CASE WHEN in_window_k THEN
    x ELSE 0 END + …``: the x whose condition holds), or [] if its shape is another."""
    ev = Evaluator(policy, row, as_of)
    terms = []
    for case in policy.definitions()[name].tree.find_all(exp.Case):
        for branch in case.args.get("ifs") or ():
            if ev.interp(branch.this) is True and isinstance(branch.args["true"], exp.Column):
                terms.append(branch.args["true"].name)
    return [t for t in terms if t in policy.inputs]


def _outcome_with(
    policy_id: str, facts: dict, as_of: dt.date, criterion: str, values: dict[str, Fraction]
) -> tuple[bool | None, list]:
    """The criterion's outcome with each subject in ``values`` at its value: inputs set in
    the facts, derived values replaced in the evaluation. Also: the fields then invalid."""
    policy = get_policy(policy_id)
    changed = facts
    derived = {}
    for subject, value in values.items():
        if subject in policy.inputs:
            changed = _with_input(changed, as_of, subject, value)
        else:
            derived[subject] = value
    if not derived:
        decision = evaluate(policy_id, changed, as_of).to_dict()
        (row,) = [c for c in decision["trace"]["criteria"] if c["id"] == criterion]
        return row["outcome"], decision["invalid_fields"]
    row = flatten(changed, as_of, lenient=True)
    return _Overridden(policy, row, as_of, derived).lookup(criterion), []


# ------------------------------------------------------------------ the property
def _target(current: Fraction, change: dict, short: bool) -> Fraction | None:
    """The subject's value the change asks for (``short``: one unit less far), or None
    where the flip format gives no exact value to apply."""
    if change["unit"] == "date":
        # A date moves to a bound (inclusive, or just past it when strict), not "by".
        bound = dt.date.fromisoformat(change["bound"])
        day = dt.timedelta(days=1)
        up = change["direction"] == "increase"
        if change["strict"]:
            bound = bound + day if up else bound - day
        if short:
            bound = bound - day if up else bound + day
        return Fraction(date_int(bound))
    step = _step(change)
    if step is None:
        # SKIPPED ON PURPOSE: a subject of unknown unit (a ratio, a product) gets its gap
        # as a float ("by") and a text rounded to 6 decimals, "more than" when strict:
        # neither is an exact value to apply, and there is no unit to be one smaller by.
        return None
    amount = _exact_amount(change)
    # counterfactual.py: a value of known unit moves in whole steps, never "more than".
    assert change["strict"] is False, change
    assert amount % step == 0, f"not a whole number of {step}: {amount}"
    assert amount > 0, change
    return _moved(current, change, amount - step if short else amount)


def check_flips(policy_id: str, facts: dict, as_of: dt.date) -> int:
    """Check every flip of one evaluation; the number of changes checked."""
    policy = get_policy(policy_id)
    decision = evaluate(policy_id, facts, as_of).to_dict()
    row = flatten(facts, as_of, lenient=True)
    checked = 0
    for c in decision["trace"]["criteria"]:
        flip = c["flip"]
        if flip is None:
            continue
        where = f"{policy_id} as of {as_of}, criterion {c['id']}, flip {flip}, facts {facts}"
        # 3. only for a failing requirement
        assert c["role"] == "requirement", where
        assert c["outcome"] is False, where
        changes = flip["changes"]
        assert changes, where
        subjects = [ch["subject"] for ch in changes]
        if len(set(subjects)) != len(subjects):
            # SKIPPED ON PURPOSE: two comparisons on the same value would each name it; the
            # format does not say whether their changes add up or the larger one applies.
            continue
        current = {s: _current(policy, row, as_of, s) for s in subjects}
        full = {ch["subject"]: _target(current[ch["subject"]], ch, short=False) for ch in changes}
        if any(v is None for v in full.values()):
            continue  # see _target: no exact value to apply
        # 1. enough: the criterion passes with every change applied
        outcome, invalid = _outcome_with(policy_id, facts, as_of, c["id"], full)
        assert outcome is True, (
            f"{where}\nwith {full} applied the outcome is {outcome} (invalid then: {invalid})"
        )
        # 2. the smallest: each change one unit smaller (the others in full) is not enough
        for ch in changes:
            s = ch["subject"]
            short = {**full, s: _target(current[s], ch, short=True)}
            outcome, _ = _outcome_with(policy_id, facts, as_of, c["id"], short)
            assert outcome is not True, f"{where}\none unit less of {s} ({short[s]}) already passes"
        # A labelled sum: the same change made in the facts, through one input it adds up
        # (everything it adds up moves it by as much). A term that the change would make
        # invalid (e.g. more domestic R&D than R&D in that year) is not one to use.
        for ch in changes:
            s = ch["subject"]
            if s in policy.inputs or ch["unit"] == "date" or _step(ch) is None:
                continue
            for term in _sum_terms(policy, row, as_of, s):
                moved = {**{k: v for k, v in full.items() if k != s}}
                value = _moved(Fraction(row[term]), ch, _exact_amount(ch))
                moved[term] = value
                outcome, invalid = _outcome_with(policy_id, facts, as_of, c["id"], moved)
                if invalid != decision["invalid_fields"]:
                    continue
                assert outcome is True, f"{where}\nwith {term} at {value} the outcome is {outcome}"
                moved[term] = value + (
                    Fraction(-1) if ch["direction"] == "increase" else 1
                ) * Fraction(_step(ch))
                outcome, _ = _outcome_with(policy_id, facts, as_of, c["id"], moved)
                assert outcome is not True, f"{where}\none unit less of {term} already passes"
                break
        checked += len(changes)
    return checked


@st.composite
def _case(draw, policy_id: str) -> tuple[dt.date, dict]:
    as_of = draw(st.sampled_from(_as_of_dates(policy_id)))
    return as_of, draw(enterprise(policy_id, as_of))


def _fen(top_yuan: int) -> st.SearchStrategy[Decimal]:
    return st.integers(0, top_yuan * 100).map(lambda f: Decimal(f) / 100)


@st.composite
def _hte_near(draw) -> tuple[dt.date, dict]:
    """A complete hte enterprise with every figure known and consistent (R&D in China at
    most the R&D, high-tech income at most the income, S&T staff at most the staff), so
    that the ratio criteria fail by a gap more often than on the generic generator, with
    last-year sales across the tier bounds (5000万, 2亿)."""
    as_of = draw(
        st.sampled_from([dt.date(2024, 6, 30), dt.date(2025, 6, 30), dt.date(2025, 12, 31)])
    )
    y = as_of.year
    financials = {}
    for k in (3, 2, 1):
        sales = draw(
            st.one_of(
                _fen(300_000_000),
                st.sampled_from(
                    [
                        Decimal("50000000"),
                        Decimal("50000000.01"),
                        Decimal("200000000"),
                        Decimal("200000000.01"),
                    ]
                ),
            )
        )
        rd = draw(_fen(20_000_000))
        domestic = draw(st.integers(0, int(rd * 100)).map(lambda f: Decimal(f) / 100))
        financials[str(y - k)] = {
            "sales_revenue": sales,
            "rd_expense": rd,
            "rd_expense_domestic": domestic,
            "total_assets": draw(_fen(10**8)),
            "total_liabilities": draw(_fen(10**7)),
        }
    income = draw(_fen(10**8))
    staff = draw(st.integers(1, 100_000).map(lambda c: Decimal(c) / 100))
    financials[str(y - 1)].update(
        total_income=income,
        high_tech_income=draw(st.integers(0, int(income * 100)).map(lambda f: Decimal(f) / 100)),
        staff_total=staff,
        staff_sci_tech=draw(st.integers(0, int(staff * 100)).map(lambda f: Decimal(f) / 100)),
    )
    facts = {
        "registration_date": (as_of - dt.timedelta(days=draw(st.integers(300, 2000)))).isoformat(),
        "registered_in_mainland": True,
        "resident_enterprise": True,
        "tech_field_supported": True,
        "major_incident_within_365d": False,
        "ip": {
            "class1_count": draw(st.integers(0, 2)),
            "class2_count_unused": draw(st.integers(0, 2)),
            "any_self_developed": True,
        },
        "financials": financials,
        "conversions": {str(y - k): draw(st.integers(0, 3)) for k in (3, 2, 1)},
    }
    return as_of, facts


#: The smallest examples found of flips that do not make their criterion pass.
KNOWN = {
    # total assets 1 fen over 2亿, staff and sales unknown: size_within_limits is FALSE
    # (NULL AND NULL AND FALSE); "decrease total assets by at least 0.01" would leave it
    # NULL, not TRUE, so no flip may be offered.
    "tsme": (
        dt.date(2025, 6, 30),
        {"financials": {"2024": {"total_assets": Decimal("200000000.01")}}},
        "size_within_limits",
    ),
    # a start-up team of 2 core members, company and incubator facts absent: "increase core
    # members by at least 1" would leave team_applicant NULL.
    "voucher": (
        dt.date(2025, 6, 30),
        {"applicant_type": "startup_team", "team": {"core_members": 2}},
        "team_applicant",
    ),
}


@pytest.mark.parametrize("policy_id", POLICIES)
def test_every_flip_is_enough_and_the_smallest(policy_id: str) -> None:
    cases = _case(policy_id)
    if policy_id == "hte":
        cases = st.one_of(cases, _hte_near())

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(cases)
    def run(case):
        as_of, facts = case
        check_flips(policy_id, facts, as_of)

    run()


@pytest.mark.parametrize("policy_id", sorted(KNOWN))
def test_the_smallest_failures_found(policy_id: str) -> None:
    """The shrunk failures the random search found, checked on every run (not only when the
    search happens upon one again)."""
    as_of, facts, criterion = KNOWN[policy_id]
    check_flips(policy_id, facts, as_of)
    (c,) = [c for c in evaluate(policy_id, facts, as_of).to_dict()["trace"]["criteria"] if c["id"] == criterion]
    assert c["outcome"] is False and c["flip"] is None
