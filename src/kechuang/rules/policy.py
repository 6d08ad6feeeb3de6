"""A policy as frozen dataclasses: inputs, dated parameters, bands, criteria, outputs.

A policy file reads like the document it encodes; ``kechuang.rules.loader`` reads one into
these classes (parsing every expression with sqlglot and failing with the file, the line
and the reason before anything runs), ``kechuang.rules.yaml_source`` reads the YAML.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path

from sqlglot import exp

from kechuang.rules import expressions as ex
from kechuang.rules.errors import NotInForce

POLICY_DIR = Path(__file__).parent / "policies"

#: Names every expression may read besides the policy's own.
BUILTINS = {
    "as_of": "date",  # the as-of date, yyyymmdd
    "as_of_year": "count",  # Y
    "any_missing": "bool",  # a required input is missing
    "any_invalid": "bool",  # an input is invalid
}

@dataclass(frozen=True)
class Text:
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class Expr:
    """A parsed expression with the place it was written."""

    text: str
    tree: exp.Expression
    line: int | None

    @cached_property
    def names(self) -> set[str]:
        # Cached: explaining one enterprise asks for the names of the same trees often.
        return ex.names(self.tree)


@dataclass(frozen=True)
class Input:
    """An input the policy reads: a flat-row column, with when it is required."""

    name: str
    type: str
    description: Text
    required: Expr | None  # None: never required; TRUE expression: always
    invalid_when: Expr | None
    allow_negative: bool
    line: int | None
    #: A presence flag (bool) whose FALSE means "not given": counts as absent when
    #: required (e.g. rd_expense_expensed_by_period_present, RULES.md 4.3).
    missing_when_false: bool = False
    #: When not TRUE the input is ignored: never invalid, never missing (e.g. a fiscal
    #: year outside the window, RULES.md 2.2 "Inputs outside the window are ignored").
    relevant_when: Expr | None = None
    #: Read only to be checked (RULES.md: "informational, never counted"): it can make
    #: the decision needs_data by being invalid (e.g. negative), but no rule uses it.
    checked_only: bool = False


#: The start of a timeline's first value written without ``from``: in force at any
#: earlier date (RULES.md gives some values for any date, e.g. the voucher caps).
OPEN_START = dt.date.min


@dataclass(frozen=True)
class TimelineEntry:
    start: dt.date  # OPEN_START: in force at any earlier date (only the first entry)
    end: dt.date | None  # inclusive; None = open
    value: Fraction | None  # None: the parameter does not apply in this period
    article: str
    line: int | None

    @property
    def since(self) -> dt.date | None:
        """The start date as shown to people (None: since ever)."""
        return None if self.start == OPEN_START else self.start


@dataclass(frozen=True)
class Parameter:
    """A dated value timeline (e.g. a subsidy ratio 0.50 until 2021-12-31, 0.75 from 2022)."""

    name: str
    title: Text
    unit: str
    select_by: Expr | None  # None: the as-of date; else a yyyymmdd expression per row
    entries: tuple[TimelineEntry, ...]
    line: int | None

    def at(self, day: dt.date) -> TimelineEntry | None:
        """The entry in force on ``day``, or None outside every entry."""
        for entry in self.entries:
            if entry.start <= day and (entry.end is None or day <= entry.end):
                return entry
        return None

    @property
    def always(self) -> TimelineEntry | None:
        """The one entry in force at every date, if the timeline is just that: then the
        value is known whatever ``select_by`` gives, even an unknown date (RULES.md 5.3:
        the municipal voucher ratio is 0.50 at any order date)."""
        if len(self.entries) == 1 and self.entries[0].start == OPEN_START:
            return self.entries[0] if self.entries[0].end is None else None
        return None

    @property
    def scale(self) -> int:
        """Decimal places of the most precise value (for exact integer SQL)."""
        return max((_decimal_places(e.value) for e in self.entries if e.value is not None), default=0)


@dataclass(frozen=True)
class Bound:
    value: Fraction | None  # None = infinite
    inclusive: bool


@dataclass(frozen=True)
class BandRow:
    label: str
    lower: Bound
    upper: Bound
    points: tuple[int, int]
    text: str
    line: int | None

    def contains(self, x: Fraction) -> bool:
        lo, hi = self.lower, self.upper
        if lo.value is not None and (x < lo.value or (x == lo.value and not lo.inclusive)):
            return False
        return not (
            hi.value is not None and (x > hi.value or (x == hi.value and not hi.inclusive))
        )


@dataclass(frozen=True)
class Band:
    """A threshold → points table; each bound explicitly inclusive or exclusive."""

    name: str
    title: Text
    article: str
    rows: tuple[BandRow, ...]
    line: int | None
    #: The values the band must cover without gap or overlap (default: every number).
    domain: tuple[Bound, Bound] = (Bound(None, False), Bound(None, False))

    def row_for(self, x: Fraction) -> BandRow | None:
        for row in self.rows:
            if row.contains(x):
                return row
        return None

    @property
    def scale(self) -> int:
        return max(
            (
                _decimal_places(b.value)
                for r in self.rows
                for b in (r.lower, r.upper)
                if b.value is not None
            ),
            default=0,
        )


@dataclass(frozen=True)
class Criterion:
    """A condition of the policy, citing its article."""

    name: str
    title: Text
    article: str
    expr: Expr
    #: ``requirement``: must be true; ``exclusion``: true excludes the enterprise (e.g. the
    #: negative list); ``classification``: picks a group or rate, neither met nor failed.
    role: str = "requirement"
    #: When FALSE the criterion does not apply to this enterprise (the start-up team test
    #: for an enterprise applicant): shown as not applicable, never as unknown or failed.
    #: Explanation only: the verdict is what ``verdict`` says.
    applies_when: Expr | None = None


CRITERION_ROLES = ("requirement", "exclusion", "classification")


@dataclass(frozen=True)
class Score:
    """An interval score item [min, max]: experts choose the point inside a band."""

    name: str
    title: Text
    article: str
    min: Expr
    max: Expr


@dataclass(frozen=True)
class Output:
    """A leaf of the decision's ``to_dict()``: a path of keys and how to compute it."""

    path: tuple[str, ...]
    kind: str  # value | interval | list
    exprs: tuple[Expr, ...]
    type: str  # bool | count | money | ratio | text | list
    present_when: Expr | None
    #: What people read for it (e.g. 补贴金额); else the criterion, score or derived value
    #: of the same name gives the words (see ``explain/render.py``).
    title: Text | None = None


@dataclass(frozen=True)
class Stacking:
    """A ``stacking:`` entry (不得重复享受): this policy's benefit and ``other``'s for the
    same enterprise. ``excludes``: only one is paid (``keep`` says which: the higher
    amount, or this policy's); ``caps``: both, together at most the parameter ``total``.
    The 免申即享 runs apply it; the engine only reads and checks it."""

    other: str
    kind: str  # excludes | caps
    keep: str  # higher | this (excludes)
    total: str | None  # a parameter of this policy (caps)
    article: str
    reason: Text | None
    line: int | None


@dataclass(frozen=True)
class Policy:
    id: str
    title: Text
    authority: Text
    documents: tuple[dict, ...]
    effective_from: dt.date
    effective_to: dt.date | None
    inputs: dict[str, Input]
    parameters: dict[str, Parameter]
    bands: dict[str, Band]
    derived: dict[str, Expr]
    criteria: dict[str, Criterion]
    scores: dict[str, Score]
    verdict: dict[str, Expr]  # ineligible / needs_data / needs_review
    outputs: tuple[Output, ...]
    path: Path
    sha256: str
    #: Plain-language names of derived values (``derived: {name: {expr, description}}``),
    #: used where a derived value is shown to people, e.g. in the smallest change.
    labels: dict[str, Text] = field(default_factory=dict)
    stacking: tuple[Stacking, ...] = ()

    def reads(self, e: Expr) -> set[str]:
        """Every name ``e`` reads, directly or through the definitions it reads."""
        defs, seen, todo = self._definitions, set(), list(e.names)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(defs[name].names if name in defs else ())
        return seen

    def require_in_force(self, as_of: dt.date) -> None:
        """Refuse an as-of date on which a parameter read by date has no value.

        Such a day is outside the policy's rules (hte before 2016-01-01, when the 2008
        办法 applied): evaluating it would give ``needs_data`` naming no input (RULES.md 0.2).
        Parameters selected per row (a tax year, an order date) may be unknown by design.
        """
        for param in self.parameters.values():
            if param.select_by is None and param.at(as_of) is None:
                later = [e.start for e in param.entries if e.start > as_of]
                since = min(later).isoformat() if later else None
                raise NotInForce(self.id, as_of.isoformat(), param.name, since)

    @cached_property
    def decided_relevance(self) -> frozenset[str]:
        """Inputs whose ``relevant_when`` reads derived values, not only raw inputs.

        Such an input is checked like any other, so an impossible value is still unknown,
        but it is reported (and makes the decision needs_data) only where the derived
        values say the rules read it (e.g. the 2022 split only for the "others" group).
        """
        raw = set(self.inputs) | {"as_of", "as_of_year"}
        return frozenset(
            name for name, inp in self.inputs.items()
            if inp.relevant_when is not None and not inp.relevant_when.names <= raw
        )

    def definitions(self) -> dict[str, Expr]:
        """Every named expression the policy defines, score ends as ``<name>_min/_max``.

        A fresh dict each call (callers may extend it); the mapping is built once.
        """
        return dict(self._definitions)

    @cached_property
    def _definitions(self) -> dict[str, Expr]:
        defs: dict[str, Expr] = dict(self.derived)
        defs.update({c.name: c.expr for c in self.criteria.values()})
        for s in self.scores.values():
            # A score may simply name derived values `<name>_min` / `<name>_max`.
            defs.setdefault(f"{s.name}_min", s.min)
            defs.setdefault(f"{s.name}_max", s.max)
        return defs


def _decimal_places(value: Fraction) -> int:
    """Decimal places needed to write ``value`` exactly (it must be a decimal).

    >>> _decimal_places(Fraction(3, 4)), _decimal_places(Fraction(5))
    (2, 0)
    """
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
        if places > 18:
            raise ValueError(f"{value} is not a short decimal")
    return places
