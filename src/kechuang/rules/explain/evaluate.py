"""Explain one enterprise: evaluate a policy over its flat facts row, with a full trace."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from kechuang.rules.explain.interpreter import Interpreter
from kechuang.rules.facts import COLUMNS_BY_NAME, MALFORMED, date_int
from kechuang.rules.numbers import json_number, plain_number
from kechuang.rules.policy import Expr, Policy, TimelineEntry

VERDICTS = ("ineligible", "needs_data", "needs_review", "eligible")
NUMERIC = {"money", "number", "share", "count"}


@dataclass
class ParameterUse:
    """A parameter value a decision read: the value, since when, under which article."""

    name: str
    value: Fraction | None
    start: dt.date | None
    end: dt.date | None
    article: str | None


@dataclass
class CriterionTrace:
    name: str
    title_zh: str
    title_en: str
    article: str
    expression: str
    outcome: bool | None
    values: dict[str, Any]
    parameters: list[ParameterUse]
    flip: dict | None = None
    role: str = "requirement"
    #: False when the criterion's ``applies_when`` is false for this enterprise.
    applies: bool = True

    @property
    def passed(self) -> bool | None:
        """Whether the enterprise passes this criterion: an exclusion passes when false;
        a classification, or a criterion that does not apply, neither passes nor fails."""
        if not self.applies:
            return None
        if self.role == "exclusion":
            return None if self.outcome is None else not self.outcome
        return self.outcome if self.role == "requirement" else None


@dataclass
class Evaluation:
    """Everything one evaluation computed; ``decision.py`` shapes it for users."""

    policy: Policy
    as_of: dt.date
    row: dict[str, Any]
    verdict: str
    missing_fields: list[str]
    invalid_fields: list[str]
    outputs: dict[str, Any]
    criteria: list[CriterionTrace]
    scores: dict[str, tuple[Any, Any]]
    parameters_used: dict[str, ParameterUse] = field(default_factory=dict)


def _to_fraction(value: Any, typ: str) -> Any:
    if value is None:
        return None
    if typ in NUMERIC or typ == "date":
        if isinstance(value, bool):
            return value
        return Fraction(value) if not isinstance(value, int) else value
    return value


class Evaluator:
    """Lazily evaluates every name of a policy for one flat row (memoised)."""

    def __init__(self, policy: Policy, row: dict[str, Any], as_of: dt.date) -> None:
        policy.require_in_force(as_of)
        self.policy = policy
        self.as_of = as_of
        self.raw = {
            name: _to_fraction(row.get(name), inp.type) for name, inp in policy.inputs.items()
        }
        self.defs = policy.definitions()
        self.memo: dict[str, Any] = {}
        self.params_used: dict[str, ParameterUse] = {}
        self.invalid = self._invalid_inputs(row)
        self.clean = {
            name: (None if name in self.invalid else value) for name, value in self.raw.items()
        }
        unusable = set(self.invalid)  # fixed here: reporting below may drop some
        self.interp = Interpreter(
            self.lookup,
            policy.bands,
            given=lambda name: self.raw.get(name) is not None or name in unusable,
        )
        # An invalid input the derived values show no rule reads stays unknown but is
        # not reported (RULES.md 4.5: only a *needed* input makes the decision needs_data).
        self.ignored = {
            name for name in policy.decided_relevance & self.invalid
            if self.interp(policy.inputs[name].relevant_when.tree) is not True
        }
        self.invalid -= self.ignored
        self.missing = self._missing_inputs()

    # -- inputs
    def _raw_lookup(self, name: str) -> Any:
        if name in self.raw:
            return self.raw[name]
        return self._builtin(name)

    def _invalid_inputs(self, row: dict[str, Any]) -> set[str]:
        invalid: set[str] = set()
        malformed = row.get(MALFORMED, ())  # values that did not fit their type
        raw_interp = Interpreter(self._raw_lookup, self.policy.bands)
        for name, inp in self.policy.inputs.items():
            value = self.raw[name]
            if (
                inp.relevant_when is not None
                and name not in self.policy.decided_relevance
                and raw_interp(inp.relevant_when.tree) is not True
            ):
                continue
            if name in malformed or inp.type == "date" and row.get(f"{name}_invalid") or (
                inp.type in NUMERIC
                and not inp.allow_negative
                and value is not None
                and value < 0
            ) or inp.invalid_when is not None and raw_interp(inp.invalid_when.tree) is True:
                invalid.add(name)
        return invalid

    def _missing_inputs(self) -> set[str]:
        missing = set()
        for name, inp in self.policy.inputs.items():
            value = self.raw[name]
            absent = value is None or (inp.missing_when_false and value is False)
            if inp.required is None or name in self.invalid | self.ignored or not absent:
                continue
            if self.interp(inp.required.tree) is True:
                missing.add(name)
        return missing

    def field_path(self, name: str) -> str:
        return COLUMNS_BY_NAME[name].reported_path(self.as_of)

    # -- names
    def _builtin(self, name: str) -> Any:
        if name == "as_of":
            return date_int(self.as_of)
        if name == "as_of_year":
            return self.as_of.year
        if name == "any_missing":
            return bool(self.missing)
        if name == "any_invalid":
            return bool(self.invalid)
        raise KeyError(name)

    def lookup(self, name: str) -> Any:
        if name in self.clean:
            return self.clean[name]
        if name in self.memo:
            return self.memo[name]
        if name in self.policy.parameters:
            value = self._parameter(name)
        elif name in self.defs:
            value = self.interp(self.defs[name].tree)
        else:
            return self._builtin(name)
        self.memo[name] = value
        return value

    def _parameter(self, name: str) -> Fraction | None:
        param = self.policy.parameters[name]
        if param.select_by is None or param.always is not None:
            day = self.as_of  # (a value in force at every date is known without its key)
        else:
            key = self.interp(param.select_by.tree)
            if key is None:
                self.params_used[name] = ParameterUse(name, None, None, None, None)
                return None
            try:
                day = dt.date(int(key) // 10000, int(key) // 100 % 100, int(key) % 100)
            except ValueError:
                return None
        entry: TimelineEntry | None = param.at(day)
        self.params_used[name] = ParameterUse(
            name,
            entry.value if entry else None,
            entry.since if entry else None,
            entry.end if entry else None,
            entry.article if entry else None,
        )
        return entry.value if entry else None

    def evaluate(self, e: Expr) -> Any:
        return self.interp(e.tree)

    def names_read(self, e: Expr) -> dict[str, Any]:
        """The inputs and definitions an expression reads, with their values."""
        values = {}
        for name in sorted(e.names):
            if name in self.policy.parameters:
                continue
            values[name] = self.lookup(name)
        return values


def evaluate_row(policy: Policy, row: dict[str, Any], as_of: dt.date) -> Evaluation:
    """Evaluate ``policy`` for one flat facts row as of ``as_of``."""
    ev = Evaluator(policy, row, as_of)
    verdict = "eligible"
    for key in ("ineligible", "needs_data", "needs_review"):
        e = policy.verdict.get(key)
        if e is not None and ev.evaluate(e) is True:
            verdict = key
            break

    from kechuang.rules.explain.counterfactual import flip_for

    criteria = []
    for c in policy.criteria.values():
        outcome = ev.lookup(c.name)
        params = [
            ev.params_used[p]
            for p in sorted(_parameters_read(policy, c.expr))
            if p in ev.params_used or ev.lookup(p) is not None or p in ev.params_used
        ]
        trace = CriterionTrace(
            name=c.name,
            title_zh=c.title.zh,
            title_en=c.title.en,
            article=c.article,
            expression=c.expr.text,
            outcome=outcome,
            values=ev.names_read(c.expr),
            parameters=params,
            role=c.role,
            # Unknown whether it applies (the applicant type missing): shown as it stands.
            applies=c.applies_when is None or ev.evaluate(c.applies_when) is not False,
        )
        if outcome is False and c.role == "requirement" and trace.applies:
            trace.flip = flip_for(policy, c, ev)
        criteria.append(trace)

    scores = {
        name: (ev.lookup(f"{name}_min"), ev.lookup(f"{name}_max")) for name in policy.scores
    }
    outputs: dict[str, Any] = {}
    for out in policy.outputs:
        if out.present_when is not None and ev.evaluate(out.present_when) is not True:
            continue
        if out.kind == "interval":
            lo, hi = (ev.evaluate(e) for e in out.exprs)
            value: Any = None if lo is None or hi is None else [_plain(lo), _plain(hi)]
        elif out.kind == "list":
            value = []
            for cond, text in zip(out.exprs[::2], out.exprs[1::2], strict=True):
                if ev.evaluate(cond) is True:
                    value.append(str(ev.evaluate(text)))
        else:
            value = _shape(ev.evaluate(out.exprs[0]), out.type)
        _put(outputs, out.path, value)
    outputs["verdict"] = verdict
    # (a set: the parts of one input, e.g. a split, are reported under its one path)
    outputs["missing_fields"] = sorted({ev.field_path(n) for n in ev.missing})
    outputs["invalid_fields"] = sorted({ev.field_path(n) for n in ev.invalid})
    return Evaluation(
        policy=policy,
        as_of=as_of,
        row=row,
        verdict=verdict,
        missing_fields=outputs["missing_fields"],
        invalid_fields=outputs["invalid_fields"],
        outputs=outputs,
        criteria=criteria,
        scores=scores,
        parameters_used=dict(ev.params_used),
    )


def _parameters_read(policy: Policy, e: Expr, seen: set[str] | None = None) -> set[str]:
    """Parameters an expression reads, directly or through definitions."""
    seen = seen if seen is not None else set()
    defs = policy.definitions()
    found = set()
    for name in e.names:
        if name in policy.parameters:
            found.add(name)
        elif name in defs and name not in seen:
            seen.add(name)
            found |= _parameters_read(policy, defs[name], seen)
    return found


def _plain(value: Any) -> Any:
    """A JSON-ready number: int when whole, else the float of the exact decimal."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return plain_number(value)


def _shape(value: Any, typ: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if typ == "ratio":
        # Exactly: half-up (away from zero) at 6 decimals, never through a binary float.
        f = Fraction(value)
        scaled = math.floor(abs(f) * 10**6 + Fraction(1, 2))
        return json_number(Decimal(f"{scaled if f >= 0 else -scaled}e-6"))
    if typ == "text":
        return str(value)
    return _plain(value)


def _put(target: dict, path: tuple[str, ...], value: Any) -> None:
    node = target
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value

