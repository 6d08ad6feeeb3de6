"""Policy files: YAML with dated parameters, bands, criteria and cited articles.

A policy file reads like the document it encodes. This module loads one into frozen
dataclasses, parsing every expression with sqlglot and failing with the file, the line
and the reason before anything runs. Numbers are read through their decimal text (a YAML
float becomes a ``Decimal``, never a binary float).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from sqlglot import exp

from kechuang.rules import expressions as ex
from kechuang.rules.errors import NotInForce, PolicyFileError
from kechuang.rules.facts import COLUMNS_BY_NAME

POLICY_DIR = Path(__file__).parent / "policies"

#: Names every expression may read besides the policy's own.
BUILTINS = {
    "as_of": "date",  # the as-of date, yyyymmdd
    "as_of_year": "count",  # Y
    "any_missing": "bool",  # a required input is missing
    "any_invalid": "bool",  # an input is invalid
}


# --------------------------------------------------------------------------- YAML


class _Map(dict):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


# libyaml's parser, where installed, reads a policy file several times faster; both keep
# the line marks the error messages cite.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    explicit: set = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in explicit:
            raise PolicyFileError(
                str(loader.name), key_node.start_mark.line + 1, f"duplicate key '{key}'"
            )
        explicit.add(key)
    # A `<<: *anchor` merge comes first; keys written next to it override it.
    loader.flatten_mapping(node)
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_decimal(loader: _Loader, node: yaml.ScalarNode) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "")
    if text.lower() in (".inf", "+.inf"):
        return Decimal("Infinity")
    if text.lower() == "-.inf":
        return Decimal("-Infinity")
    return Decimal(text)


def _construct_date(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        # 2023-02-29 looks like a date to YAML but is none: name the line, not a traceback.
        raise PolicyFileError(
            str(loader.name),
            node.start_mark.line + 1,
            f"not a date: {node.value} (quote it to keep it as text)",
        ) from None


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_date)


def load_yaml(path: Path) -> Any:
    """Load YAML with Decimal numbers and line-aware mappings."""
    text = path.read_text(encoding="utf-8")
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise PolicyFileError(str(path), line, f"invalid YAML: {getattr(e, 'problem', e)}") from None
    finally:
        loader.dispose()


def _line(node: Any, key: str | None = None) -> int | None:
    if isinstance(node, _Map):
        if key is not None and key in node.key_lines:
            return node.key_lines[key]
        return node.line
    return None


# --------------------------------------------------------------------------- model


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


# --------------------------------------------------------------------------- loading


class _Reader:
    """Reads one policy file, raising PolicyFileError with the line of the problem."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: Any, reason: str, key: str | None = None) -> PolicyFileError:
        return PolicyFileError(str(self.path), _line(node, key), reason)

    def text(self, node: Any, key: str, where: str) -> Text:
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, str):
            return Text(value, value)
        if not isinstance(value, dict) or not {"zh", "en"} <= set(value):
            raise self.fail(node, f"{where}: '{key}' needs zh and en", key)
        extra = set(value) - {"zh", "en"}
        if extra:
            # `{zh: 上限（5,000万元）, en: …}` splits at the comma into a cut text and a key.
            raise self.fail(
                value,
                f"{where}: '{key}' has keys other than zh and en ({', '.join(map(str, extra))}):"
                " quote a text that holds a comma",
            )
        return Text(str(value["zh"]), str(value["en"]))

    def expr(self, node: Any, key: str, where: str) -> Expr:
        if not isinstance(node, dict) or key not in node:
            raise self.fail(node, f"{where}: missing '{key}'")
        raw = node[key]
        if isinstance(raw, bool):
            raw = "TRUE" if raw else "FALSE"
        try:
            tree = ex.parse(raw)
        except ex.ExpressionError as e:
            raise self.fail(node, f"{where}: {e}", key) from None
        return Expr(str(raw), tree, _line(node, key))

    def date(self, node: Any, key: str, where: str, optional: bool = False) -> dt.date | None:
        value = node.get(key)
        if value is None and optional:
            return None
        if isinstance(value, dt.date):
            return value
        raise self.fail(node, f"{where}: '{key}' must be a YYYY-MM-DD date", key)


def _parse_bound(text: str) -> tuple[Bound, Bound]:
    """Parse an interval like ``[0.25, 0.35)``, ``(-inf, 0]`` or ``[5, inf)``.

    >>> lo, hi = _parse_bound("[0.25, 0.35)")
    >>> (lo.value, lo.inclusive, hi.value, hi.inclusive)
    (Fraction(1, 4), True, Fraction(7, 20), False)
    """
    text = text.strip()
    if len(text) < 5 or text[0] not in "[(" or text[-1] not in "])" or "," not in text:
        raise ValueError(f"'{text}' is not an interval like [a, b)")
    lo_text, hi_text = (p.strip() for p in text[1:-1].split(","))

    def value(t: str) -> Fraction | None:
        if t.lstrip("+-").lower() == "inf":
            return None
        return Fraction(Decimal(t))

    lo, hi = value(lo_text), value(hi_text)
    if (lo is None and lo_text.startswith("+")) or (hi is None and hi_text.startswith("-")):
        raise ValueError(f"'{text}': infinite bound on the wrong side")
    lower = Bound(lo, text[0] == "[" and lo is not None)
    upper = Bound(hi, text[-1] == "]" and hi is not None)
    return lower, upper


def load_policy(path: str | Path) -> Policy:
    """Load and check one policy file; raise PolicyFileError(path, line, reason)."""
    path = Path(path)
    raw_bytes = path.read_bytes()
    doc = load_yaml(path)
    r = _Reader(path)
    if not isinstance(doc, dict):
        raise r.fail(doc, "a policy file is a mapping with id, title, inputs, …")
    for key in ("id", "title", "inputs", "verdict", "outputs"):
        if key not in doc:
            raise r.fail(doc, f"missing required section '{key}'")
    unknown = [str(k) for k in doc if k not in _SECTIONS]
    if unknown:
        # A misspelt section (`parameter:`) would otherwise be silently left out.
        raise r.fail(
            doc, f"unknown section '{unknown[0]}' (known: {', '.join(_SECTIONS)})", unknown[0]
        )

    effective = doc.get("effective") or {}
    inputs: dict[str, Input] = {}
    for name, spec in (doc.get("inputs") or {}).items():
        if name not in COLUMNS_BY_NAME:
            raise r.fail(doc["inputs"], f"input '{name}' is not a column of the facts row", name)
        spec = spec if isinstance(spec, dict) else _Map()
        required = spec.get("required", False)
        req_expr = None
        if required is True:
            req_expr = Expr("TRUE", ex.parse("TRUE"), _line(spec, "required"))
        elif required not in (False, None):
            req_expr = r.expr(spec, "required", f"input {name}")
        inputs[name] = Input(
            name=name,
            type=COLUMNS_BY_NAME[name].type,
            description=r.text(spec, "description", f"input {name}")
            if "description" in spec
            else Text(name, name),
            required=req_expr,
            invalid_when=r.expr(spec, "invalid_when", f"input {name}")
            if "invalid_when" in spec
            else None,
            allow_negative=bool(spec.get("allow_negative", False)),
            missing_when_false=bool(spec.get("missing_when_false", False)),
            checked_only=bool(spec.get("checked_only", False)),
            line=_line(doc["inputs"], name),
            relevant_when=r.expr(spec, "relevant_when", f"input {name}")
            if "relevant_when" in spec
            else None,
        )

    parameters: dict[str, Parameter] = {}
    for name, spec in (doc.get("parameters") or {}).items():
        where = f"parameter {name}"
        if not isinstance(spec, dict) or not isinstance(spec.get("values"), list):
            raise r.fail(doc["parameters"], f"{where}: needs a list of dated 'values'", name)
        entries = []
        for item in spec["values"]:
            if not isinstance(item, dict) or "value" not in item:
                raise r.fail(spec, f"{where}: each value needs from, value and article", "values")
            # No 'from': the value has always applied (RULES.md gives some values for any
            # date, e.g. the municipal voucher ratio); only the first entry may omit it.
            start = r.date(item, "from", where, optional=True) or OPEN_START
            end = r.date(item, "to", where, optional=True)
            value = item["value"]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | Decimal)):
                raise r.fail(item, f"{where}: value must be a number or null", "value")
            if "article" not in item:
                raise r.fail(item, f"{where}: each value must cite its article")
            unknown = set(item) - {"from", "to", "value", "article", "note"}
            if unknown:
                # Usually an unquoted comma in a flow mapping cut the article in two.
                raise r.fail(item, f"{where}: unknown key(s) {sorted(map(str, unknown))}")
            entries.append(
                TimelineEntry(
                    start=start,
                    end=end,
                    value=None if value is None else Fraction(value),
                    article=str(item["article"]),
                    line=_line(item),
                )
            )
        if any(e.start == OPEN_START for e in entries[1:]):
            raise r.fail(spec, f"{where}: only the first value may omit 'from'", "values")
        entries.sort(key=lambda e: e.start)
        parameters[name] = Parameter(
            name=name,
            title=r.text(spec, "title", where) if "title" in spec else Text(name, name),
            unit=str(spec.get("unit", "number")),
            select_by=r.expr(spec, "select_by", where) if "select_by" in spec else None,
            entries=tuple(entries),
            line=_line(doc["parameters"], name),
        )

    bands: dict[str, Band] = {}
    for name, spec in (doc.get("bands") or {}).items():
        where = f"band {name}"
        if not isinstance(spec, dict) or not isinstance(spec.get("rows"), list):
            raise r.fail(doc["bands"], f"{where}: needs 'rows'", name)
        rows = []
        for row in spec["rows"]:
            try:
                lower, upper = _parse_bound(str(row.get("when", "")))
            except ValueError as e:
                raise r.fail(row, f"{where}: {e}", "when") from None
            points = row.get("points")
            if isinstance(points, int):
                points = [points, points]
            if (
                not isinstance(points, list)
                or len(points) != 2
                or not all(isinstance(p, int) for p in points)
                or points[0] > points[1]
            ):
                raise r.fail(row, f"{where}: points must be an integer or [min, max]", "points")
            rows.append(
                BandRow(
                    str(row.get("label", "")), lower, upper, (points[0], points[1]),
                    str(row["when"]), _line(row),
                )
            )
        try:
            domain = _parse_bound(str(spec.get("domain", "(-inf, inf)")))
        except ValueError as e:
            raise r.fail(spec, f"{where}: domain {e}", "domain") from None
        bands[name] = Band(
            name,
            r.text(spec, "title", where) if "title" in spec else Text(name, name),
            str(spec.get("article", "")),
            tuple(rows),
            _line(doc["bands"], name),
            domain,
        )

    derived: dict[str, Expr] = {}
    labels: dict[str, Text] = {}
    for name, spec in (doc.get("derived") or {}).items():
        holder = spec if isinstance(spec, dict) else doc["derived"]
        key = "expr" if isinstance(spec, dict) else name
        derived[name] = r.expr(holder, key, f"derived {name}")
        if isinstance(spec, dict) and "description" in spec:
            labels[name] = r.text(spec, "description", f"derived {name}")

    criteria: dict[str, Criterion] = {}
    for name, spec in (doc.get("criteria") or {}).items():
        where = f"criterion {name}"
        if not isinstance(spec, dict):
            raise r.fail(doc["criteria"], f"{where}: needs expr, article and title", name)
        if "article" not in spec:
            raise r.fail(spec, f"{where}: must cite its article")
        role = str(spec.get("role", "requirement"))
        if role not in CRITERION_ROLES:
            raise r.fail(spec, f"{where}: role must be one of {', '.join(CRITERION_ROLES)}", "role")
        criteria[name] = Criterion(
            name,
            r.text(spec, "title", where),
            str(spec["article"]),
            r.expr(spec, "expr", where),
            role,
            r.expr(spec, "applies_when", where) if "applies_when" in spec else None,
        )

    scores: dict[str, Score] = {}
    for name, spec in (doc.get("scores") or {}).items():
        where = f"score {name}"
        if not isinstance(spec, dict):
            raise r.fail(doc["scores"], f"{where}: needs min and max", name)
        scores[name] = Score(
            name,
            r.text(spec, "title", where) if "title" in spec else Text(name, name),
            str(spec.get("article", "")),
            r.expr(spec, "min", where),
            r.expr(spec, "max", where),
        )

    verdict_spec = doc["verdict"]
    verdict = {}
    for key in ("ineligible", "needs_data", "needs_review"):
        if key in verdict_spec:
            verdict[key] = r.expr(verdict_spec, key, "verdict")
    unknown = set(verdict_spec) - {"ineligible", "needs_data", "needs_review"}
    if unknown:
        raise r.fail(verdict_spec, f"verdict: unknown key(s) {sorted(unknown)}")
    for key in ("ineligible", "needs_data"):
        if key not in verdict:
            raise r.fail(verdict_spec, f"verdict: missing '{key}'")

    outputs = tuple(_read_outputs(r, doc["outputs"], ()))
    policy = Policy(
        id=str(doc["id"]),
        title=r.text(doc, "title", "policy"),
        authority=r.text(doc, "authority", "policy") if "authority" in doc else Text("", ""),
        documents=tuple(doc.get("documents") or ()),
        effective_from=r.date(effective, "from", "effective") if effective else dt.date.min,
        effective_to=r.date(effective, "to", "effective", optional=True) if effective else None,
        inputs=inputs,
        parameters=parameters,
        bands=bands,
        derived=derived,
        criteria=criteria,
        scores=scores,
        verdict=verdict,
        outputs=outputs,
        path=path,
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        labels=labels,
        stacking=_read_stacking(r, doc, parameters),
    )
    _check_names(r, doc, policy)
    return policy


_SECTIONS = (
    "id", "title", "authority", "documents", "effective", "stacking", "inputs", "parameters",
    "bands", "derived", "criteria", "scores", "verdict", "outputs",
)  # fmt: skip
_STACKING_KEYS = {"excludes", "caps", "keep", "total", "article", "reason"}


def _read_stacking(
    r: _Reader, doc: dict, parameters: dict[str, Parameter]
) -> tuple[Stacking, ...]:
    """The ``stacking:`` section: one entry, or a list of them."""
    spec = doc.get("stacking")
    if spec is None:
        return ()
    items = spec if isinstance(spec, list) else [spec]
    out: list[Stacking] = []
    for item in items:
        if not isinstance(item, dict):
            raise r.fail(doc, "stacking: each entry is a mapping (excludes or caps, article)")
        where = "stacking"
        unknown = sorted(str(k) for k in set(item) - _STACKING_KEYS)
        if unknown:
            raise r.fail(item, f"{where}: unknown key(s) {unknown}", unknown[0])
        kinds = [k for k in ("excludes", "caps") if k in item]
        if len(kinds) != 1:
            raise r.fail(item, f"{where}: give exactly one of 'excludes' and 'caps'")
        kind = kinds[0]
        targets = item[kind]
        others = [targets] if isinstance(targets, str) else targets
        if not (isinstance(others, list) and others and all(isinstance(o, str) for o in others)):
            raise r.fail(item, f"{where}: '{kind}' names a policy id or a list of them", kind)
        keep, total = item.get("keep", "higher"), item.get("total")
        if kind == "excludes":
            if keep not in ("higher", "this"):
                raise r.fail(item, f"{where}: keep is 'higher' or 'this', not '{keep}'", "keep")
            if total is not None:
                raise r.fail(item, f"{where}: 'total' goes with 'caps', not 'excludes'", "total")
        else:
            if "keep" in item:
                raise r.fail(item, f"{where}: 'keep' goes with 'excludes', not 'caps'", "keep")
            if total not in parameters:
                raise r.fail(item, f"{where}: 'caps' needs 'total', a parameter of this policy")
        article = item.get("article")
        if not isinstance(article, str) or not article.strip():
            raise r.fail(item, f"{where}: cite the article that forbids paying both ('article')")
        reason = r.text(item, "reason", where) if "reason" in item else None
        for other in others:
            if other == doc.get("id"):
                raise r.fail(item, f"{where}: a policy cannot exclude or cap itself", kind)
            out.append(Stacking(other, kind, keep, total, article, reason, _line(item, kind)))
    return tuple(out)


_LEAF_KEYS = {"expr", "interval", "list", "type", "present_when", "title"}


def _read_outputs(r: _Reader, node: Any, prefix: tuple[str, ...]):
    if not isinstance(node, dict):
        raise r.fail(node, "outputs must be a mapping")
    present = r.expr(node, "present_when", "outputs") if "present_when" in node else None
    for key, spec in node.items():
        if key == "present_when":
            continue
        path = (*prefix, str(key))
        where = "output " + ".".join(path)
        if isinstance(spec, dict) and set(spec) <= _LEAF_KEYS and set(spec) & {
            "expr",
            "interval",
            "list",
        }:
            leaf_present = (
                r.expr(spec, "present_when", where) if "present_when" in spec else present
            )
            title = r.text(spec, "title", where) if "title" in spec else None
            if "interval" in spec:
                pair = spec["interval"]
                if not isinstance(pair, list) or len(pair) != 2:
                    raise r.fail(spec, f"{where}: interval needs [min, max]", "interval")
                holder = _Map({"min": pair[0], "max": pair[1]})
                holder.line = _line(spec, "interval") or 0
                holder.key_lines = {}
                exprs = (r.expr(holder, "min", where), r.expr(holder, "max", where))
                yield Output(path, "interval", exprs, "count", leaf_present, title)
            elif "list" in spec:
                items = spec["list"]
                if not isinstance(items, list):
                    raise r.fail(spec, f"{where}: list needs a list of [condition, text]")
                exprs = []
                for item in items:
                    holder = _Map({"when": item[0], "value": item[1]})
                    holder.line = _line(spec, "list") or 0
                    holder.key_lines = {}
                    exprs.append(r.expr(holder, "when", where))
                    exprs.append(r.expr(holder, "value", where))
                yield Output(path, "list", tuple(exprs), "list", leaf_present, title)
            else:
                yield Output(
                    path,
                    "value",
                    (r.expr(spec, "expr", where),),
                    str(spec.get("type", "")),
                    leaf_present,
                    title,
                )
        elif isinstance(spec, dict):
            yield from _read_outputs(r, spec, path)
        else:
            holder = node
            yield Output(path, "value", (r.expr(holder, key, where),), "", present)


def _check_names(r: _Reader, doc: dict, policy: Policy) -> None:
    """Every name read must be an input, parameter, definition or builtin; no cycles."""
    defs = policy.definitions()
    known = set(policy.inputs) | set(policy.parameters) | set(defs) | set(BUILTINS)
    clash = set(policy.inputs) & (set(policy.parameters) | set(defs))
    if clash:
        raise r.fail(doc, f"names defined twice: {sorted(clash)}")

    def check(e: Expr, where: str) -> None:
        unknown = e.names - known
        if unknown:
            raise PolicyFileError(
                str(policy.path), e.line, f"{where}: unknown name(s) {sorted(unknown)}"
            )
        for band in ex.band_refs(e.tree):
            if band not in policy.bands:
                raise PolicyFileError(str(policy.path), e.line, f"{where}: unknown band '{band}'")
        for call in e.tree.find_all(exp.Anonymous):
            arg = call.expressions[0] if call.expressions else None
            if call.name.upper() == "GIVEN" and not (
                isinstance(arg, exp.Column) and arg.name in policy.inputs
            ):
                raise PolicyFileError(
                    str(policy.path), e.line, f"{where}: GIVEN() takes an input name"
                )

    for name, e in defs.items():
        check(e, name)
    for c in policy.criteria.values():
        if c.applies_when is not None:
            check(c.applies_when, f"criterion {c.name}: applies_when")
    for inp in policy.inputs.values():
        for raw in (inp.invalid_when, inp.relevant_when):
            # These decide which inputs are invalid: GIVEN() (given, valid or not) cannot
            # be read before that is known.
            if raw is not None and any(
                c.name.upper() == "GIVEN" for c in raw.tree.find_all(exp.Anonymous)
            ):
                raise PolicyFileError(
                    str(policy.path),
                    raw.line,
                    f"input {inp.name}: GIVEN() is not allowed in invalid_when/relevant_when",
                )
        if inp.invalid_when is not None:
            unknown = inp.invalid_when.names - set(policy.inputs) - {"as_of", "as_of_year"}
            if unknown:
                raise PolicyFileError(
                    str(policy.path),
                    inp.invalid_when.line,
                    f"input {inp.name}: invalid_when reads raw inputs only,"
                    f" not {sorted(unknown)}",
                )
        if inp.relevant_when is not None:
            check(inp.relevant_when, f"input {inp.name}: relevant_when")
            # Whether an input is needed may rest on derived values, but not on the input
            # itself nor on missing/invalid data: that would be circular.
            circular = policy.reads(inp.relevant_when) & {inp.name, "any_missing", "any_invalid"}
            if circular:
                raise PolicyFileError(
                    str(policy.path),
                    inp.relevant_when.line,
                    f"input {inp.name}: relevant_when depends on {sorted(circular)}",
                )
        if inp.required is not None:
            check(inp.required, f"input {inp.name}")
    for p in policy.parameters.values():
        if p.select_by is not None:
            check(p.select_by, f"parameter {p.name}")
    for key, e in policy.verdict.items():
        check(e, f"verdict {key}")
    for out in policy.outputs:
        for e in out.exprs:
            check(e, "output " + ".".join(out.path))
        if out.present_when is not None:
            check(out.present_when, "output " + ".".join(out.path))
    deps = {name: e.names & set(defs) for name, e in defs.items()}
    # required_when may read definitions; definitions must not read any_missing (it would
    # make missing data depend on itself).
    try:
        ex.topological_order(deps)
    except ex.ExpressionError as e:
        raise r.fail(doc, str(e)) from None
