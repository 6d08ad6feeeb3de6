"""Static checks of a policy file, as a law-checking language does them.

Each finding names the file and line: a band table with a gap or an overlap, a parameter
timeline with overlapping or missing dates, a criterion that can never be true or never
be false, an input declared but never read, a stacking entry naming no policy. Loading
already rejects what cannot run (unknown names, cycles, bad expressions, unknown
sections); these checks find what runs but is wrong.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

from sqlglot import exp

from kechuang.rules.explain.interpreter import literal
from kechuang.rules.expressions import conjuncts
from kechuang.rules.policy import POLICY_DIR, Band, Bound, Parameter, Policy


@dataclass(frozen=True)
class Finding:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line or 1}: {self.message}"


def _lower_key(b: Bound) -> tuple:
    # Order lower bounds: -inf first; at equal values an inclusive bound starts earlier.
    return (0,) if b.value is None else (1, b.value, 0 if b.inclusive else 1)


def _gap_or_overlap(upper: Bound, lower: Bound) -> str | None:
    """Compare one row's upper bound with the next row's lower bound."""
    if upper.value is None or lower.value is None:
        return "overlap" if upper.value is None else "gap"
    if upper.value < lower.value:
        return "gap"
    if upper.value > lower.value:
        return "overlap"
    if upper.inclusive and lower.inclusive:
        return "overlap"
    if not upper.inclusive and not lower.inclusive:
        return "gap"
    return None


def check_band(policy: Policy, band: Band) -> list[Finding]:
    """Rows must tile the band's domain: no gap, no overlap, each bound explicit.

    Rows may be written in any order; they are sorted by their lower bound.
    """
    path = str(policy.path)
    rows = sorted(band.rows, key=lambda r: _lower_key(r.lower))
    found: list[Finding] = []
    lo, hi = band.domain
    first, last = rows[0], rows[-1]
    if _lower_key(first.lower) > _lower_key(lo) and not (
        lo.value is not None and first.lower.value == lo.value and first.lower.inclusive == lo.inclusive
    ):
        found.append(Finding(path, first.line, f"band {band.name}: gap below {first.text}"))
    if last.upper.value is not None and (
        hi.value is None or last.upper.value < hi.value
    ):
        found.append(Finding(path, last.line, f"band {band.name}: gap above {last.text}"))
    for a, b in zip(rows, rows[1:], strict=False):
        problem = _gap_or_overlap(a.upper, b.lower)
        if problem:
            found.append(
                Finding(path, b.line, f"band {band.name}: {problem} between {a.text} and {b.text}")
            )
    return found


def check_timeline(policy: Policy, param: Parameter) -> list[Finding]:
    """Entries must follow each other day by day; only the last may be open-ended."""
    path = str(policy.path)
    found = []
    entries = param.entries
    if not entries:
        return [Finding(path, param.line, f"parameter {param.name}: no values")]
    for a, b in zip(entries, entries[1:], strict=False):
        if a.end is None or a.end >= b.start:
            found.append(
                Finding(
                    path,
                    b.line,
                    f"parameter {param.name}: {b.start} overlaps the value from"
                    f" {a.since or 'the beginning'}",
                )
            )
        elif a.end + dt.timedelta(days=1) < b.start:
            found.append(
                Finding(
                    path,
                    b.line,
                    f"parameter {param.name}: no value from {a.end + dt.timedelta(days=1)}"
                    f" to {b.start - dt.timedelta(days=1)}",
                )
            )
    for e in entries:
        if e.end is not None and e.end < e.start:
            found.append(Finding(path, e.line, f"parameter {param.name}: ends before it starts"))
    return found


_OPS = {exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.EQ: "="}


def _constant(policy: Policy, node: exp.Expression, as_of: dt.date) -> Fraction | None:
    node = node.unnest()
    if isinstance(node, exp.Literal) and not node.is_string:
        return literal(node)
    if isinstance(node, exp.Neg):
        inner = _constant(policy, node.this, as_of)
        return None if inner is None else -inner
    if isinstance(node, exp.Column) and node.name in policy.parameters:
        param = policy.parameters[node.name]
        if param.select_by is None:
            entry = param.at(as_of)
            return entry.value if entry else None
    return None


def _satisfiable(policy: Policy, expr: exp.Expression, as_of: dt.date) -> bool:
    """False when the top-level AND of comparisons `name OP constant` cannot hold."""
    lo: dict[str, tuple[Fraction, bool]] = {}
    hi: dict[str, tuple[Fraction, bool]] = {}
    for part in conjuncts(expr):
        if type(part) not in _OPS:
            continue
        left, right = part.left.unnest(), part.right.unnest()
        op = _OPS[type(part)]
        if not isinstance(left, exp.Column) or left.name in policy.parameters:
            continue
        c = _constant(policy, right, as_of)
        if c is None:
            continue
        name = left.name
        if op in (">", ">=", "="):
            cur = lo.get(name)
            cand = (c, op != ">")
            if cur is None or c > cur[0] or (c == cur[0] and not cand[1]):
                lo[name] = cand
        if op in ("<", "<=", "="):
            cur = hi.get(name)
            cand = (c, op != "<")
            if cur is None or c < cur[0] or (c == cur[0] and not cand[1]):
                hi[name] = cand
    for name in lo.keys() & hi.keys():
        (a, a_inc), (b, b_inc) = lo[name], hi[name]
        if a > b or (a == b and not (a_inc and b_inc)):
            return False
    return True


def _reads_inputs(policy: Policy, expr: exp.Expression, seen: set[str] | None = None) -> bool:
    seen = seen if seen is not None else set()
    defs = policy.definitions()
    for node in expr.walk():
        if not isinstance(node, exp.Column):
            continue
        if node.name in policy.inputs or node.name in ("any_missing", "any_invalid"):
            return True
        if node.name in policy.parameters and policy.parameters[node.name].select_by is not None:
            return True
        if node.name in defs and node.name not in seen:
            seen.add(node.name)
            if _reads_inputs(policy, defs[node.name].tree, seen):
                return True
    return False


def check_criteria(policy: Policy) -> list[Finding]:
    path = str(policy.path)
    found = []
    dates = sorted(
        {e.since or policy.effective_from for p in policy.parameters.values() for e in p.entries}
    ) or [policy.effective_from]
    for c in policy.criteria.values():
        tree = c.expr.tree
        if not _reads_inputs(policy, tree):
            found.append(
                Finding(path, c.expr.line, f"criterion {c.name}: reads no input, so it never changes")
            )
            continue
        if all(not _satisfiable(policy, tree, d) for d in dates):
            found.append(Finding(path, c.expr.line, f"criterion {c.name}: can never be true"))
        if isinstance(tree.unnest(), exp.Or):
            # NOT (a OR b) = NOT a AND NOT b: check the negations together.
            parts = []
            stack = [tree.unnest()]
            while stack:
                n = stack.pop()
                if isinstance(n, exp.Or):
                    stack += [n.left.unnest(), n.right.unnest()]
                else:
                    parts.append(_negate(n))
            if all(p is not None for p in parts):
                conj = parts[0]
                for p in parts[1:]:
                    conj = exp.And(this=conj, expression=p)
                if all(not _satisfiable(policy, conj, d) for d in dates):
                    found.append(
                        Finding(path, c.expr.line, f"criterion {c.name}: can never be false")
                    )
    return found


_NEGATE = {exp.GT: exp.LTE, exp.GTE: exp.LT, exp.LT: exp.GTE, exp.LTE: exp.GT}


def _negate(node: exp.Expression) -> exp.Expression | None:
    kind = _NEGATE.get(type(node))
    if kind is None:
        return None
    return kind(this=node.left.copy(), expression=node.right.copy())


def check_unread_inputs(policy: Policy) -> list[Finding]:
    read: set[str] = set()
    for e in policy.definitions().values():
        read |= e.names
    for e in policy.verdict.values():
        read |= e.names
    for out in policy.outputs:
        for e in out.exprs:
            read |= e.names
        if out.present_when is not None:
            read |= out.present_when.names
    for inp in policy.inputs.values():
        for e in (inp.required, inp.invalid_when, inp.relevant_when):
            if e is not None:
                read |= e.names - {inp.name}
        if inp.required is not None:
            # A required input decides missing_fields and the verdict by its absence.
            read.add(inp.name)
    for p in policy.parameters.values():
        if p.select_by is not None:
            read |= p.select_by.names
    return [
        Finding(str(policy.path), inp.line, f"input {name} is declared but never read")
        for name, inp in policy.inputs.items()
        if name not in read and not inp.checked_only
    ]


def check_stacking(policy: Policy) -> list[Finding]:
    """A ``stacking:`` entry must name a policy there is: the packaged ones, or a policy
    file beside this one. A misspelt id would never meet its pair, and both would be paid."""
    known = {
        p.stem
        for folder in {POLICY_DIR, policy.path.parent}
        for p in folder.glob("*.yaml")
        if not p.name.endswith(".cases.yaml")
    }
    return [
        Finding(
            str(policy.path), s.line,
            f"stacking: {s.kind} '{s.other}', which is no policy here"
            f" (known: {', '.join(sorted(known - {policy.id}))})",
        )
        for s in policy.stacking
        if s.other not in known
    ]  # fmt: skip


def check_policy(policy: Policy) -> list[Finding]:
    """Every static finding for one loaded policy, sorted by line."""
    found: list[Finding] = []
    found += check_stacking(policy)
    for band in policy.bands.values():
        found += check_band(policy, band)
    for param in policy.parameters.values():
        found += check_timeline(policy, param)
    found += check_criteria(policy)
    found += check_unread_inputs(policy)
    return sorted(found, key=lambda f: (f.line or 0, f.message))
