"""Read and check one policy file into a :class:`~kechuang.rules.policy.Policy`.

Every problem fails with the file, the line and the reason (``PolicyFileError``) before
anything runs: unknown sections, a text without its zh and en, an expression sqlglot
cannot parse or the whitelist refuses, a band row that is not an interval, a name no
input, parameter or definition holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlglot import exp

from kechuang.rules import expressions as ex
from kechuang.rules.errors import PolicyFileError
from kechuang.rules.facts import COLUMNS_BY_NAME
from kechuang.rules.policy import (
    BUILTINS,
    CRITERION_ROLES,
    OPEN_START,
    Band,
    BandRow,
    Bound,
    Criterion,
    Expr,
    Input,
    Output,
    Parameter,
    Policy,
    Score,
    Stacking,
    Text,
    TimelineEntry,
)
from kechuang.rules.yaml_source import LineMap, line_of, load_yaml


class _Reader:
    """Reads one policy file, raising PolicyFileError with the line of the problem."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: Any, reason: str, key: str | None = None) -> PolicyFileError:
        return PolicyFileError(str(self.path), line_of(node, key), reason)

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
        return Expr(str(raw), tree, line_of(node, key))

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
        spec = spec if isinstance(spec, dict) else LineMap()
        required = spec.get("required", False)
        req_expr = None
        if required is True:
            req_expr = Expr("TRUE", ex.parse("TRUE"), line_of(spec, "required"))
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
            line=line_of(doc["inputs"], name),
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
                    line=line_of(item),
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
            line=line_of(doc["parameters"], name),
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
                    str(row["when"]), line_of(row),
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
            line_of(doc["bands"], name),
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
            out.append(Stacking(other, kind, keep, total, article, reason, line_of(item, kind)))
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
                holder = LineMap({"min": pair[0], "max": pair[1]})
                holder.line = line_of(spec, "interval") or 0
                holder.key_lines = {}
                exprs = (r.expr(holder, "min", where), r.expr(holder, "max", where))
                yield Output(path, "interval", exprs, "count", leaf_present, title)
            elif "list" in spec:
                items = spec["list"]
                if not isinstance(items, list):
                    raise r.fail(spec, f"{where}: list needs a list of [condition, text]")
                exprs = []
                for item in items:
                    holder = LineMap({"when": item[0], "value": item[1]})
                    holder.line = line_of(spec, "list") or 0
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
