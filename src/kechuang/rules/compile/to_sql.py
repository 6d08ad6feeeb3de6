"""Compile a policy to one SQL query over a table of flat facts rows.

The query has the same meaning as the in-process interpreter, on every engine:

- **Exact numbers.** Every numeric value travels as an exact integer, the value times
  10**scale (money in fen; a literal 0.05 as 5 at scale 2). Additions rescale to the larger
  scale, products add scales, and a comparison with a division (``n / d >= t``) becomes a
  sign-aware cross-multiplication, so a ratio exactly on its bound passes on SQLite too.
- **Parameters folded** for the as-of date; a parameter selected by a row's own date
  (e.g. the voucher ratio by order date) becomes a CASE over its timeline.
- **Bands become CASE expressions**, NULL stays unknown, and ``LEAST``/``GREATEST`` are
  written as CASEs because engines disagree about NULL arguments.
- No user-defined functions: only plain SQL that DuckDB, SQLite, PostgreSQL and Spark run.
- **Doubles only where proven right.** On DuckDB a ratio of products (a 3-year growth
  rate, 128-bit integers to compare exactly) is first compared in double precision with an
  error bound; the rows the bound cannot settle take the exact integers (``_guard_ratio``).

Derived values are computed in a chain of CTEs, one per dependency level.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import sqlglot
from sqlglot import exp

from kechuang.rules.compile.dialects import Dialect, get_dialect
from kechuang.rules.explain.interpreter import literal
from kechuang.rules.expressions import names as ex_names
from kechuang.rules.facts import SCALES, date_int
from kechuang.rules.policy import BUILTINS, Expr, Policy

_FLIP = {exp.GT: "<", exp.GTE: "<=", exp.LT: ">", exp.LTE: ">=", exp.EQ: "=", exp.NEQ: "<>"}
_OPS = {exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.EQ: "=", exp.NEQ: "<>"}
_SQL_OP = {v: k for k, v in _OPS.items()}


class CompileError(ValueError):
    pass


@dataclass(frozen=True)
class Sql:
    """A compiled expression: SQL text and what kind of value it yields.

    ``kind`` is ``num`` (an exact integer standing for value * 10**scale), ``float``
    (display only), ``bool`` or ``text``.
    """

    text: str
    kind: str
    scale: int = 0


def _ident(name: str) -> str:
    return f'"{name}"'


def _places(value: Fraction) -> int:
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    return places


@dataclass
class CompiledPolicy:
    policy_id: str
    dialect: str
    as_of: dt.date
    sql: str
    #: output column -> (path in to_dict, type) so runners can rebuild decision dicts.
    columns: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)


class Compiler:
    def __init__(self, policy: Policy, as_of: dt.date, dialect: Dialect) -> None:
        policy.require_in_force(as_of)
        self.p = policy
        self.as_of = as_of
        self.d = dialect
        self.defs = policy.definitions()
        # Definitions whose value is a ratio are inlined where they are used: a ratio is
        # never materialised, so it can always be compared exactly by cross-multiplying.
        # Everything else (conditions, points, amounts) is computed once in a CTE column.
        self.inline: set[str] = set()
        self.positive_dens: set[str] = set()
        # A denominator the enclosing CASE has already found non-zero (a band's rows).
        self.nonzero_den: str | None = None
        # While a band's rows are compiled in 64 bits: each row's multiplier of its operands.
        self.narrow: list[int] | None = None
        # A ratio's numerator and denominator as written, by ratio name.
        self.quotients: dict[str, tuple[exp.Expression, exp.Expression]] = {}
        for name in list(self.defs):
            if self._is_ratio(self.defs[name].tree, frozenset({name})):
                self.inline.add(name)
                self._split_quotient(name)
        # Hidden columns expanded where they are read, never computed for every row.
        self.expand: set[str] = set()
        # Ratios first decided in double precision (see _guard_ratio).
        self.guarded: set[str] = set()
        self.scales: dict[str, tuple[int, int]] = {}  # a guarded ratio's (numerator, denominator)
        # While a guarded band's double-precision rows are compiled: its ratio, and the
        # thresholds its rows compare with (each must be clear of the estimate).
        self.fmode: str | None = None
        self.fbounds: list[str] = []
        if dialect.guard_double:
            for name in list(self.quotients):
                self._guard_ratio(name)
        self._hoist_bands()
        self._hoist_parameters()
        self.def_sql: dict[str, Sql] = {}  # materialised definitions: column kinds/scales

    def _hoist_parameters(self) -> None:
        """Give each parameter chosen per row (``select_by``, e.g. the regime of the tax
        year) a hidden column, and each distinct selecting value one too: otherwise every
        use repeats the whole CASE over the timeline, and every CASE branch the key."""
        self.param_keys: dict[str, str] = {}
        self.param_cols: dict[str, str] = {}
        used: set[str] = set()
        for e in self.defs.values():
            used |= e.names
        for pname, param in self.p.parameters.items():
            if param.select_by is None or pname not in used:
                continue
            text = param.select_by.tree.sql()
            if text not in self.param_keys:
                key = f"__key_{len(self.param_keys)}"
                self.param_keys[text] = key
                self.defs[key] = Expr(text, param.select_by.tree.copy(), param.select_by.line)
            self.param_cols[pname] = f"__param_{pname}"
            self.defs[f"__param_{pname}"] = Expr(pname, exp.column(pname), param.select_by.line)

    def _hoist_bands(self) -> None:
        """Give every distinct band lookup its own hidden column, computed once per row.

        A definition often names the same lookup several times (LEAST/GREATEST of two
        bands repeats each argument, a growth score tries one band per case); inlined,
        each copy would be evaluated again. A lookup has no side effect and is NULL where
        its argument is unknown, so computing it on every row changes no result.
        """
        hoisted: dict[str, str] = {}
        rows: dict[str, str] = {}
        # Hidden column -> the condition under which each of its uses is read (None: always).
        reached: dict[str, list[exp.Expression | None]] = {}
        for name in list(self.defs):
            e = self.defs[name]
            calls = [
                n for n in e.tree.find_all(exp.Anonymous) if n.name.upper().startswith("BAND_")
            ]
            if not calls or name.startswith("__band_"):
                continue
            tree = e.tree.copy()
            for node in list(tree.find_all(exp.Anonymous)):
                if not node.name.upper().startswith("BAND_"):
                    continue
                key = node.sql()
                if key not in hoisted:
                    hoisted[key] = f"__band_{len(hoisted)}"
                    self.defs[hoisted[key]] = Expr(key, self._band_pick(node, rows, e.line), e.line)
                guard = _reached_when(node)
                reached.setdefault(hoisted[key], []).append(guard)
                pick = self.defs[hoisted[key]].tree
                if pick.name.upper().startswith("BANDPICK_"):
                    reached.setdefault(pick.expressions[1].name, []).append(guard)
                if node is tree:
                    tree = exp.column(hoisted[key])
                    break
                node.replace(exp.column(hoisted[key]))
            self.defs[name] = Expr(e.text, tree, e.line)
        # A lookup read only in some CASE branches (a growth rate over two years, used
        # when a window has two years) is computed only on the rows that may reach them:
        # NULL elsewhere, where nothing reads it.
        for col, guards in reached.items():
            # A guard that reads a lookup (directly or through definitions) would make the
            # lookups depend on each other: such a column is computed on every row.
            if any(g is None or self._reads_a_lookup(g) for g in guards):
                continue
            distinct = list({g.sql(): g for g in guards}.values())
            cond = distinct[0].copy()
            for g in distinct[1:]:
                cond = exp.Or(this=cond, expression=g.copy())
            e = self.defs[col]
            self.defs[col] = Expr(e.text, exp.Case(ifs=[exp.If(this=cond, true=e.tree)]), e.line)

    def _reads_a_lookup(self, cond: exp.Expression) -> bool:
        """Whether a condition reads a band lookup, itself or through definitions."""
        seen: set[str] = set()
        trees = [cond]
        while trees:
            tree = trees.pop()
            if any(a.name.upper().startswith("BAND") for a in tree.find_all(exp.Anonymous)):
                return True
            for name in ex_names(tree) - seen:
                if name.startswith("__band"):
                    return True
                seen.add(name)
                if name in self.defs:
                    trees.append(self.defs[name].tree)
        return False

    def _band_pick(self, call: exp.Anonymous, rows: dict[str, str], line: int) -> exp.Expression:
        """A tiled band's lookup as a pick from the row its argument falls in.

        The row is found once per (band, argument), in a hidden column: the minimum, the
        maximum and the label of the same lookup (an expert-scored range) then each cost
        one small CASE on that row's number instead of every bound test again.
        """
        band_name, arg = call.expressions[0].name, call.expressions[1]
        if _tiling(self.p.bands[band_name].rows) is None:
            return call.copy()
        key = f"BANDROW({band_name}, {arg.sql()})"
        if key not in rows:
            rows[key] = f"__bandrow_{len(rows)}"
            row_call = exp.Anonymous(this="BANDROW", expressions=[exp.column(band_name), arg.copy()])
            self.defs[rows[key]] = Expr(key, row_call, line)
        pick = f"BANDPICK_{call.name.upper().removeprefix('BAND_')}"
        return exp.Anonymous(this=pick, expressions=[exp.column(band_name), exp.column(rows[key])])

    def band_pick(self, func: str, band_name: str, row: exp.Expression) -> Sql:
        """BAND_MIN, BAND_MAX or BAND_LABEL of the tiled row numbered ``row`` (NULL: none)."""
        tiles = _tiling(self.p.bands[band_name].rows)
        assert tiles is not None
        idx = self.expr(row).text
        values = [_band_value(func, r) for r in tiles]
        whens = " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values))
        return Sql(f"(CASE {idx} {whens} END)", "text" if func == "BAND_LABEL" else "num", 0)

    # ------------------------------------------------------------------ helpers
    def _split_quotient(self, name: str) -> None:
        """Compute a ratio's numerator and denominator once, as hidden columns.

        A ratio is compared by cross-multiplying wherever it is used (every band row, every
        condition); without this its whole numerator and denominator would be repeated in
        each comparison, and the query would grow with every use.
        """
        e = self.defs[name]
        tree = e.tree.unnest()
        if not isinstance(tree, exp.Div):
            return
        parts = {}
        for side, node in (("num", tree.left), ("den", tree.right)):
            if any(isinstance(n, exp.Div) for n in node.walk()) or self._is_ratio(
                node, frozenset({name})
            ):
                return
            parts[side] = node
        self.quotients[name] = (parts["num"], parts["den"])
        # The denominator is stored non-negative (the numerator takes its sign), so each
        # comparison needs one cross-multiplication, not one per sign of the denominator.
        num, den = parts["num"].sql(), parts["den"].sql()
        raw = f"__dr_{name}"
        for key, text in (
            (raw, den),
            # Negated rather than multiplied by -1: a product would be widened to 128 bits,
            # and every comparison and division on the numerator with it.
            (f"__num_{name}", f"CASE WHEN {raw} < 0 THEN -({num}) ELSE {num} END"),
            (f"__den_{name}", f"ABS({raw})"),
        ):
            self.defs[key] = Expr(text, sqlglot.parse_one(text), e.line)
        self.positive_dens.add(f"__den_{name}")
        div = exp.Div(
            this=exp.column(f"__num_{name}"), expression=exp.column(f"__den_{name}")
        )
        self.defs[name] = Expr(e.text, div, e.line)

    def _guard_ratio(self, name: str) -> None:
        """Decide a ratio of products in double precision where that provably agrees.

        ``(v2*v2 + v1*v3 - 2*v1*v2) / (2*v1*v2)`` compares exactly only in 128-bit
        integers, several times slower than doubles on DuckDB. Its numerator and
        denominator are also evaluated in doubles, with a bound on their error: a double
        polynomial of integers is off by at most (k+2)*2^-53 times the same polynomial of
        absolute values (k: its depth), bounded here by 2^-40 times it. A band or a
        displayed value whose thresholds (or rounding midpoints) are clear of the estimate
        by more than the bound is decided by the double; the others (a rate exactly on a
        bound, a denominator near zero) by the exact integers, expanded into that branch
        only, so they cost nothing on the rows the double decides.
        """
        num, den = self.quotients[name]
        if not (self._floatable(num) and self._floatable(den)):
            return
        if not (self._product_of_variables(num) or self._product_of_variables(den)):
            return  # 64 bits hold it: the exact path is as fast
        self.guarded.add(name)
        self.expand |= {f"__dr_{name}", f"__num_{name}", f"__den_{name}"}
        line = self.defs[name].line
        for key, func in ((f"__rf_{name}", "__RATIO_F"), (f"__re_{name}", "__RATIO_E")):
            tree = exp.Anonymous(this=func, expressions=[num.copy(), den.copy()])
            self.defs[key] = Expr(key, tree, line)

    def _floatable(self, tree: exp.Expression) -> bool:
        for node in tree.walk():
            if isinstance(node, exp.Column):
                if node.name in self.inline or not self._numeric(node, frozenset()):
                    return False
            elif isinstance(node, exp.Literal):
                if node.is_string:
                    return False
            elif not isinstance(
                node, exp.Identifier | exp.Paren | exp.Neg | exp.Add | exp.Sub | exp.Mul
            ):
                return False
        return True

    def _numeric(self, tree: exp.Expression, seen: frozenset[str]) -> bool:
        """Whether an expression can only be a number (never a condition or a text)."""
        node = tree.unnest()
        if isinstance(node, exp.Column):
            n = node.name
            if n in self.p.inputs:
                return self.p.inputs[n].type not in ("bool", "text")
            if n in self.p.parameters:
                return True
            return n in self.defs and n not in seen and self._numeric(self.defs[n].tree, seen | {n})
        if isinstance(node, exp.Case | exp.If):
            if isinstance(node, exp.Case):
                values = [b.args.get("true") for b in node.args.get("ifs") or []]
                values.append(node.args.get("default"))
            else:
                values = [node.args.get("true"), node.args.get("false")]
            return all(v is None or self._numeric(v, seen) for v in values)
        if isinstance(node, exp.Literal):
            return not node.is_string
        if isinstance(
            node, exp.Add | exp.Sub | exp.Mul | exp.Neg | exp.Abs | exp.Coalesce | exp.Least | exp.Greatest
        ):
            return all(self._numeric(c, seen) for c in node.iter_expressions())
        # BAND_* lookups, ROUND_*_FEN, DATE_MINUS_YEARS: numbers
        return isinstance(node, exp.Anonymous) and node.name.upper() not in ("BAND_LABEL", "GIVEN")

    def _product_of_variables(self, tree: exp.Expression) -> bool:
        def variable(t: exp.Expression) -> bool:
            return any(c.name not in self.p.parameters for c in t.find_all(exp.Column))

        return any(variable(m.left) and variable(m.right) for m in tree.find_all(exp.Mul))

    def _fpair(self, node: exp.Expression) -> tuple[str, str, int]:
        """An exact integer expression in doubles: (value, absolute-value bound, scale)."""
        node = node.unnest()
        if isinstance(node, exp.Neg):
            v, m, s = self._fpair(node.this)
            return f"(-{v})", m, s
        if isinstance(node, exp.Add | exp.Sub | exp.Mul):
            (va, ma, sa), (vb, mb, sb) = self._fpair(node.left), self._fpair(node.right)
            if isinstance(node, exp.Mul):
                return f"({va} * {vb})", f"({ma} * {mb})", sa + sb
            s = max(sa, sb)
            va, ma = _fscale(va, s - sa), _fscale(ma, s - sa)
            vb, mb = _fscale(vb, s - sb), _fscale(mb, s - sb)
            op = "+" if isinstance(node, exp.Add) else "-"
            return f"({va} {op} {vb})", f"({ma} + {mb})", s
        x = self.expr(node)
        if x.kind != "num":
            raise CompileError(f"internal: a guarded ratio reads a {x.kind}: {node.sql()}")
        v = f"CAST({x.text} AS DOUBLE)"
        return v, f"ABS({v})", x.scale

    def ratio_estimate(self, func: str, num: exp.Expression, den: exp.Expression) -> Sql:
        """``__RATIO_F``: the double quotient of the integers (scales not applied).
        ``__RATIO_E``: a bound on its error, NULL where the denominator's sign is unsure."""
        nf, nm, _ = self._fpair(num)
        df, dm, _ = self._fpair(den)
        if func == "__RATIO_F":
            return Sql(f"({nf} / NULLIF({df}, 0))", "f64")
        ne, de, q = f"({nm} * {_ERR})", f"({dm} * {_ERR})", f"ABS({nf} / {df})"
        # |D| >= |df| - de > |df| / 2, so |N/D - nf/df| <= 2 (ne + |nf/df| de) / |df|; the
        # factor 3 and the relative slack cover the rounding of these very operations.
        return Sql(
            f"(CASE WHEN ABS({df}) > 2 * {de} THEN 3 * ({ne} + {q} * {de}) / ABS({df}) "
            f"+ {q} * {_SLACK} END)",
            "f64",
        )

    def guarded_of(self, node: exp.Expression) -> str | None:
        """The guarded ratio whose quotient ``node`` is (``__num_X / __den_X``), if any."""
        if isinstance(node, exp.Div) and isinstance(node.left.unnest(), exp.Column):
            name = node.left.unnest().name.removeprefix("__num_")
            if name in self.guarded and node.left.unnest().name == f"__num_{name}":
                return name
        return None

    def _scales(self, ratio: str) -> tuple[int, int]:
        if ratio not in self.scales:
            num, den = self.quotients[ratio]
            self.scales[ratio] = (self._fpair(num)[2], self._fpair(den)[2])
        return self.scales[ratio]

    def _float_compare(self, op: str, left: exp.Div, right: exp.Expression) -> Sql:
        """``ratio OP t`` on the double estimate (a guarded band's row)."""
        if self.guarded_of(left) != self.fmode:
            raise _NotFloat
        t = self.expr(right)
        value = _int_literal(t.text) if t.kind == "num" else None
        if value is None:
            raise _NotFloat
        sn, sd = self._scales(self.fmode)
        # ratio = (N / D) * 10**(sd - sn): compare the unscaled quotient with t * 10**(sn - sd).
        bound = repr(float(Fraction(value, 10**t.scale) * Fraction(10) ** (sn - sd)))
        self.fbounds.append(bound)
        return Sql(f"({_ident('__rf_' + self.fmode)} {op} {bound})", "bool")

    def _is_ratio(self, tree: exp.Expression, seen: frozenset[str]) -> bool:
        """Whether an expression's value is a quotient (possibly chosen by a CASE)."""
        node = tree.unnest()
        if isinstance(node, exp.Div):
            return True
        if isinstance(node, exp.Column) and node.name in self.defs and node.name not in seen:
            return self._is_ratio(self.defs[node.name].tree, seen | {node.name})
        if isinstance(node, exp.Case | exp.If):
            if isinstance(node, exp.If):
                values = [node.args["true"], node.args.get("false")]
            else:
                values = [b.args["true"] for b in node.args.get("ifs") or []]
                values.append(node.args.get("default"))
            values = [v for v in values if v is not None and not isinstance(v.unnest(), exp.Null)]
            return any(self._is_ratio(v, seen) for v in values)
        return False

    def num(self, value: Fraction) -> Sql:
        scale = _places(value)
        return Sql(str(int(value * 10**scale)), "num", scale)

    def rescale(self, s: Sql, scale: int, wide: bool = True) -> str:
        if s.kind != "num":
            raise CompileError(f"expected a number, got {s.kind}: {s.text}")
        if scale < s.scale:
            raise CompileError("internal: cannot drop scale")
        if scale == s.scale:
            return s.text
        if s.text.lstrip("-").isdigit():
            # A literal: scale it here, so that the engine never multiplies two small
            # integer literals (DuckDB types 200000000 * 100 as INT32 and overflows).
            return str(int(s.text) * 10 ** (scale - s.scale))
        x = self.d.widen.format(x=s.text) if wide else s.text
        return f"({x} * {10 ** (scale - s.scale)})"

    def null_num(self) -> str:
        # A typed NULL: PostgreSQL types a column that is NULL on every branch as text,
        # and `text * integer` then fails (e.g. a parameter not yet in force on as_of).
        return self.d.to_int0.format(x="NULL")

    def bool_lit(self, v: bool) -> str:
        return self.d.true if v else self.d.false

    # ------------------------------------------------------------------ names
    def name(self, name: str) -> Sql:
        if name in self.p.inputs:
            typ = self.p.inputs[name].type
            if typ == "bool":
                return Sql(_ident(name), "bool")
            if typ == "text":
                return Sql(_ident(name), "text")
            return Sql(_ident(name), "num", SCALES[typ])
        if name in self.p.parameters:
            hoisted = self.param_cols.get(name)
            if hoisted in self.def_sql:
                s = self.def_sql[hoisted]
                return Sql(_ident(hoisted), s.kind, s.scale)
            return self.parameter(name)
        if name in self.inline or name in self.expand:
            return self.expr(self.defs[name].tree)
        if name in self.def_sql:
            s = self.def_sql[name]
            return Sql(_ident(name), s.kind, s.scale)
        if name == "as_of":
            return Sql(str(date_int(self.as_of)), "num", 0)
        if name == "as_of_year":
            return Sql(str(self.as_of.year), "num", 0)
        if name in ("any_missing", "any_invalid"):
            return Sql(_ident("__" + name), "bool")
        raise CompileError(f"internal: '{name}' used before it is computed")

    def parameter(self, name: str) -> Sql:
        param = self.p.parameters[name]
        scale = param.scale
        if param.select_by is None or param.always is not None:
            entry = param.at(self.as_of)
            if entry is None or entry.value is None:
                return Sql(self.null_num(), "num", scale)
            return Sql(self.rescale(self.num(entry.value), scale), "num", scale)
        key_col = self.param_keys.get(param.select_by.tree.sql())
        if key_col in self.def_sql:
            key = Sql(_ident(key_col), self.def_sql[key_col].kind, self.def_sql[key_col].scale)
        else:
            key = self.expr(param.select_by.tree)
        branches = []
        for entry in param.entries:
            value = (
                self.null_num() if entry.value is None else self.rescale(self.num(entry.value), scale)
            )
            # (an open start compares with 00010101: a NULL key still matches no branch)
            cond = f"{key.text} >= {date_int(entry.start)}"
            if entry.end is not None:
                cond += f" AND {key.text} <= {date_int(entry.end)}"
            branches.append(f"WHEN {cond} THEN {value}")
        return Sql(f"(CASE {' '.join(branches)} END)", "num", scale)

    # ------------------------------------------------------------------ expressions
    def expr(self, node: exp.Expression) -> Sql:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise CompileError(f"cannot compile {type(node).__name__}")
        return method(node)

    def _Paren(self, n: exp.Paren) -> Sql:
        return self.expr(n.this)

    def _Column(self, n: exp.Column) -> Sql:
        return self.name(n.name)

    def _Literal(self, n: exp.Literal) -> Sql:
        if n.is_string:
            return Sql("'" + n.this.replace("'", "''") + "'", "text")
        return self.num(literal(n))

    def _Boolean(self, n: exp.Boolean) -> Sql:
        return Sql(self.bool_lit(bool(n.this)), "bool")

    def _Null(self, n: exp.Null) -> Sql:
        return Sql("NULL", "null")

    def _Neg(self, n: exp.Neg) -> Sql:
        s = self.expr(n.this)
        return Sql(f"(-{s.text})", s.kind, s.scale)

    def _additive(self, n: exp.Binary, op: str) -> Sql:
        a, b = self.expr(n.left), self.expr(n.right)
        if "float" in (a.kind, b.kind):
            return Sql(f"({self.as_float(a)} {op} {self.as_float(b)})", "float")
        scale = max(a.scale, b.scale)
        return Sql(f"({self.rescale(a, scale)} {op} {self.rescale(b, scale)})", "num", scale)

    def _Add(self, n: exp.Add) -> Sql:
        return self._additive(n, "+")

    def _Sub(self, n: exp.Sub) -> Sql:
        return self._additive(n, "-")

    def _Mul(self, n: exp.Mul) -> Sql:
        a, b = self.expr(n.left), self.expr(n.right)
        if "float" in (a.kind, b.kind):
            return Sql(f"({self.as_float(a)} * {self.as_float(b)})", "float")
        self.rescale(a, a.scale)
        self.rescale(b, b.scale)
        return Sql(f"({self.d.widen.format(x=a.text)} * {b.text})", "num", a.scale + b.scale)

    def _Div(self, n: exp.Div) -> Sql:
        # Outside a comparison a division is only displayed (a reported ratio), never
        # compared: floating point is acceptable there and nowhere else.
        a, b = self.expr(n.left), self.expr(n.right)
        return Sql(self.d.float_div.format(a=self.as_float(a), b=self.as_float(b)), "float")

    def as_float(self, s: Sql) -> str:
        if s.kind == "float":
            return s.text
        if s.kind == "null":
            return "NULL"
        if s.scale == 0:
            return f"CAST({s.text} AS {self.d.float_type})"
        return self.d.float_div.format(a=s.text, b=str(10**s.scale))

    # comparisons --------------------------------------------------------------
    def compare(self, op: str, left: exp.Expression, right: exp.Expression) -> Sql:
        left, right = self.resolve(left), self.resolve(right)
        if isinstance(left, exp.Case | exp.If):
            return self.distribute(left, lambda v: self.compare(op, v, right))
        if isinstance(right, exp.Case | exp.If):
            return self.distribute(right, lambda v: self.compare(op, left, v))
        if isinstance(left, exp.Div) and isinstance(right, exp.Div):
            raise CompileError("cannot compare two divisions; rewrite as one")
        if isinstance(right, exp.Div):
            return self.compare(_FLIP[_SQL_OP[op]], right, left)
        if isinstance(left, exp.Div) and self.fmode is not None:
            return self._float_compare(op, left, right)
        if isinstance(left, exp.Div):
            # n / d OP t  <=>  n OP t*d when d > 0, the flipped comparison when d < 0,
            # and unknown when d = 0 (the interpreter's division by zero is NULL too).
            num, den, t = self.expr(left.left), self.expr(left.right), self.expr(right)
            if "null" in (num.kind, den.kind, t.kind):
                return Sql("NULL", "bool")
            prod_scale = t.scale + den.scale
            scale = max(num.scale, prod_scale)
            lhs = self.rescale(num, scale)
            rhs = self.rescale(
                Sql(f"({self.d.widen.format(x=t.text)} * {den.text})", "num", prod_scale), scale
            )
            flipped = _FLIP[_SQL_OP[op]]
            d_node = left.right.unnest()
            if den.text.lstrip("-").isdigit():  # a literal: its sign is known here
                if int(den.text) == 0:
                    return Sql("NULL", "bool")
                return Sql(f"({lhs} {op if int(den.text) > 0 else flipped} {rhs})", "bool")
            if isinstance(d_node, exp.Column) and d_node.name in self.positive_dens:
                if d_node.name == self.nonzero_den:
                    if self.narrow is not None:
                        return self._narrow_compare(op, num, den, t, scale, prod_scale)
                    return Sql(f"({lhs} {op} {rhs})", "bool")
                return Sql(f"(CASE WHEN {den.text} > 0 THEN {lhs} {op} {rhs} END)", "bool")
            return Sql(
                f"(CASE WHEN {den.text} > 0 THEN {lhs} {op} {rhs} "
                f"WHEN {den.text} < 0 THEN {lhs} {flipped} {rhs} END)",
                "bool",
            )
        a, b = self.expr(left), self.expr(right)
        if "null" in (a.kind, b.kind):
            return Sql("NULL", "bool")
        if a.kind == "num" and b.kind == "num":
            scale = max(a.scale, b.scale)
            return Sql(f"({self.rescale(a, scale)} {op} {self.rescale(b, scale)})", "bool")
        if a.kind != b.kind:
            raise CompileError(f"cannot compare {a.kind} with {b.kind}: {left.sql()} {op} {right.sql()}")
        return Sql(f"({a.text} {op} {b.text})", "bool")

    def _narrow_compare(self, op: str, num: Sql, den: Sql, t: Sql, scale: int, prod: int) -> Sql:
        """``num / den OP t`` in 64-bit integers, for operands the band has bounded.

        Records each operand's multiplier in ``self.narrow``: the band guards the row with
        ``|num|, den <= (2^63 - 1) / multiplier``, so no product can overflow.
        """
        t_value = _int_literal(t.text)
        if t_value is None or not _is_column(num.text):
            raise _NotNarrow
        self.narrow += [10 ** (scale - num.scale), abs(t_value) * 10 ** (scale - prod)]
        lhs = self.rescale(num, scale, wide=False)
        rhs = self.rescale(Sql(f"({t.text} * {den.text})", "num", prod), scale, wide=False)
        return Sql(f"({lhs} {op} {rhs})", "bool")

    def resolve(self, node: exp.Expression) -> exp.Expression:
        """Unwrap parentheses and inline ratio definitions so comparisons see divisions."""
        node = node.unnest()
        while isinstance(node, exp.Column) and node.name in self.inline:
            node = self.defs[node.name].tree.unnest()
        return node

    def distribute(self, case: exp.Expression, f) -> Sql:
        if isinstance(case, exp.If):
            ifs = [(case.this, case.args["true"])]
            default = case.args.get("false")
        else:
            ifs = [(b.this, b.args["true"]) for b in case.args.get("ifs") or []]
            default = case.args.get("default")
        parts = [f"WHEN {self.cond(c)} THEN {f(v).text}" for c, v in ifs]
        tail = f" ELSE {f(default).text}" if default is not None else ""
        return Sql(f"(CASE {' '.join(parts)}{tail} END)", "bool")

    def cond(self, node: exp.Expression) -> str:
        s = self.expr(node)
        if s.kind not in ("bool", "null"):
            raise CompileError(f"expected a condition: {node.sql()}")
        return s.text

    def _cmp(self, n: exp.Binary) -> Sql:
        return self.compare(_OPS[type(n)], n.left, n.right)

    _EQ = _NEQ = _GT = _GTE = _LT = _LTE = _cmp

    def _And(self, n: exp.And) -> Sql:
        return Sql(f"({self.cond(n.left)} AND {self.cond(n.right)})", "bool")

    def _Or(self, n: exp.Or) -> Sql:
        return Sql(f"({self.cond(n.left)} OR {self.cond(n.right)})", "bool")

    def _Not(self, n: exp.Not) -> Sql:
        return Sql(f"(NOT {self.cond(n.this)})", "bool")

    def _Is(self, n: exp.Is) -> Sql:
        target = n.expression
        inner = self.expr(n.this)
        if isinstance(target, exp.Null):
            return Sql(f"({inner.text} IS NULL)", "bool")
        if isinstance(target, exp.Boolean):
            value = self.bool_lit(bool(target.this))
            return Sql(f"({self.d.is_true.format(x=f'{inner.text} = {value}')})", "bool")
        raise CompileError("IS takes NULL, TRUE or FALSE")

    def _In(self, n: exp.In) -> Sql:
        parts = [self.compare("=", n.this, item).text for item in n.expressions]
        return Sql("(" + " OR ".join(parts) + ")", "bool")

    def _Between(self, n: exp.Between) -> Sql:
        lo = self.compare(">=", n.this, n.args["low"]).text
        hi = self.compare("<=", n.this, n.args["high"]).text
        return Sql(f"({lo} AND {hi})", "bool")

    def _values(self, nodes: list[exp.Expression]) -> tuple[list[Sql], str, int]:
        values = [self.expr(v) for v in nodes]
        kinds = {v.kind for v in values} - {"null"}
        if len(kinds) > 1:
            if kinds <= {"num", "float"}:
                return [Sql(self.as_float(v), "float") for v in values], "float", 0
            raise CompileError(f"branches of different kinds: {sorted(kinds)}")
        kind = kinds.pop() if kinds else "null"
        scale = max((v.scale for v in values if v.kind == "num"), default=0)
        if kind == "num":
            values = [
                Sql(self.rescale(v, scale), "num", scale) if v.kind == "num" else v for v in values
            ]
        return values, kind, scale

    def _case(self, ifs, default) -> Sql:
        nodes = [v for _, v in ifs] + ([default] if default is not None else [])
        values, kind, scale = self._values(nodes)
        parts = [f"WHEN {self.cond(c)} THEN {v.text}" for (c, _), v in zip(ifs, values, strict=False)]
        tail = f" ELSE {values[-1].text}" if default is not None else ""
        return Sql(f"(CASE {' '.join(parts)}{tail} END)", kind, scale)

    def _Case(self, n: exp.Case) -> Sql:
        ifs = [(b.this, b.args["true"]) for b in n.args.get("ifs") or []]
        return self._case(ifs, n.args.get("default"))

    def _If(self, n: exp.If) -> Sql:
        return self._case([(n.this, n.args["true"])], n.args.get("false"))

    def _Coalesce(self, n: exp.Coalesce) -> Sql:
        values, kind, scale = self._values([n.this, *n.expressions])
        return Sql(f"COALESCE({', '.join(v.text for v in values)})", kind, scale)

    def _extreme(self, n: exp.Func, op: str) -> Sql:
        values, kind, scale = self._values([n.this, *n.expressions])
        result = values[0]
        for v in values[1:]:
            a, b = result.text, v.text
            result = Sql(
                f"(CASE WHEN {a} IS NULL OR {b} IS NULL THEN NULL "
                f"WHEN {a} {op} {b} THEN {a} ELSE {b} END)",
                kind,
                scale,
            )
        return result

    def _Least(self, n: exp.Least) -> Sql:
        return self._extreme(n, "<=")

    def _Greatest(self, n: exp.Greatest) -> Sql:
        return self._extreme(n, ">=")

    def _Abs(self, n: exp.Abs) -> Sql:
        s = self.expr(n.this)
        return Sql(f"ABS({s.text})", s.kind, s.scale)

    def _Anonymous(self, n: exp.Anonymous) -> Sql:
        name = n.name.upper()
        args = n.expressions
        if name.startswith("BAND_") or name == "BANDROW":
            return self.band(name, args[0].name, args[1])
        if name in ("__RATIO_F", "__RATIO_E"):
            return self.ratio_estimate(name, args[0], args[1])
        if name.startswith("BANDPICK_"):
            return self.band_pick("BAND_" + name.removeprefix("BANDPICK_"), args[0].name, args[1])
        if name == "GIVEN":
            # Given, valid or not: an invalid value was nulled in the clean layer.
            col = args[0].name
            if col not in self.p.inputs:
                raise CompileError(f"GIVEN() takes an input name, not '{col}'")
            return Sql(f"({_ident(col)} IS NOT NULL OR {_ident('__inv_' + col)})", "bool")
        if name == "DATE_MINUS_YEARS":
            d, years = self.expr(args[0]), self.expr(args[1])
            return Sql(f"({self.rescale(d, 0)} - 10000 * {self.rescale(years, 0)})", "num", 0)
        x = self.expr(args[0])
        if x.kind == "null":
            return Sql(self.null_num(), "num", 2)
        if x.scale <= 2:
            return Sql(self.rescale(x, 2), "num", 2)
        f = 10 ** (x.scale - 2)
        if name == "ROUND_DOWN_FEN":
            wide = self.d.intdiv.format(a=x.text, b=f)
            narrow = self.d.intdiv64.format(a=self.d.to_int0.format(x=x.text), b=f)
        else:  # ROUND_HALF_UP_FEN: floor((2x + f) / 2f) for non-negative x.
            w = self.d.widen.format(x=x.text)
            wide = self.d.intdiv.format(a=f"(2 * {w} + {f})", b=2 * f)
            narrow = self.d.intdiv64.format(
                a=f"(2 * {self.d.to_int0.format(x=x.text)} + {f})", b=2 * f
            )
        if not self.d.intdiv64:
            return Sql(wide, "num", 2)
        # The product is usually far inside 64 bits: divide there (128-bit division is
        # ~10x slower on DuckDB).
        bound = (_INT64_MAX - f) // 2
        return Sql(
            f"(CASE WHEN {x.text} BETWEEN -{bound} AND {bound} THEN {narrow} ELSE {wide} END)",
            "num",
            2,
        )

    def band(self, func: str, band_name: str, arg: exp.Expression) -> Sql:
        exact = self._exact_band(func, band_name, arg)
        ratio = self.guarded_of(self.resolve(arg))
        if ratio is None:
            return exact
        self.fmode, self.fbounds = ratio, []
        try:
            fast = self._band_rows(func, self.p.bands[band_name], arg, [])
        except _NotFloat:
            return exact
        finally:
            self.fmode = None
        rf, re_ = _ident("__rf_" + ratio), _ident("__re_" + ratio)
        clear = " AND ".join(
            f"ABS({rf} - {t}) > {re_} + {abs(float(t)) * _SLACK!r}"
            for t in dict.fromkeys(self.fbounds)
        )
        return Sql(
            f"(CASE WHEN {re_} IS NOT NULL AND {clear} THEN {fast.text} ELSE {exact.text} END)",
            exact.kind,
            0,
        )

    def _exact_band(self, func: str, band_name: str, arg: exp.Expression) -> Sql:
        band = self.p.bands[band_name]
        resolved = self.resolve(arg)
        den_node = None
        if isinstance(resolved, exp.Div):
            den = self.expr(resolved.right).text
            null_test = f"{den} IS NULL OR {self.expr(resolved.left).text} IS NULL OR {den} = 0"
            den_node = resolved.right.unnest()
        else:
            null_test = f"{self.expr(resolved).text} IS NULL"
        parts = [f"WHEN {null_test} THEN NULL"]
        # Past that first row the denominator is non-zero: the rows need not test its sign.
        outer, self.nonzero_den = self.nonzero_den, (
            den_node.name if isinstance(den_node, exp.Column) else None
        )
        try:
            if den_node is None or self.d.widen == "{x}" or self.nonzero_den not in self.positive_dens:
                return self._band_rows(func, band, arg, parts)
            wide = self._band_rows(func, band, arg, [])
            self.narrow = []
            try:
                narrow = self._band_rows(func, band, arg, [])
            except _NotNarrow:
                self.narrow = None
                return self._band_rows(func, band, arg, parts)
            bound = _INT64_MAX // max(self.narrow + [1])
            num = self.expr(resolved.left).text
            # Amounts that fit (nearly all) compare in 64-bit integers; the 128-bit
            # products, several times slower on DuckDB, only where they are needed.
            return Sql(
                f"(CASE {parts[0]} WHEN ABS({num}) <= {bound} AND {den} <= {bound} "
                f"THEN {narrow.text} ELSE {wide.text} END)",
                narrow.kind,
                0,
            )
        finally:
            self.nonzero_den, self.narrow = outer, None

    def _band_rows(self, func: str, band, arg: exp.Expression, parts: list[str]) -> Sql:
        """The WHEN rows of a band, after its unknown-value test (``parts``)."""

        tiles = _tiling(band.rows)

        def value_of(row) -> str:
            if func == "BANDROW":  # the row's number among the tiles
                return str(next(i for i, t in enumerate(tiles) if t is row))
            return _band_value(func, row)

        if tiles is not None:
            # Rows that tile an interval, tested from the top: each row needs only its
            # lower bound (the rows above it have taken every larger value).
            top = tiles[-1].upper
            if top.value is not None:
                op = ">" if top.inclusive else ">="
                parts.append(f"WHEN {self.compare(op, arg, self._lit(top.value)).text} THEN NULL")
            for row in reversed(tiles):
                if row.lower.value is None:
                    parts.append(f"ELSE {value_of(row)}")
                    break
                op = ">=" if row.lower.inclusive else ">"
                cond = self.compare(op, arg, self._lit(row.lower.value)).text
                parts.append(f"WHEN {cond} THEN {value_of(row)}")
            kind = "text" if func == "BAND_LABEL" else "num"
            return Sql(f"(CASE {' '.join(parts)} END)", kind, 0)
        assert func != "BANDROW", "rows are numbered only for a tiled band"
        for row in band.rows:
            conds = []
            if row.lower.value is not None:
                op = ">=" if row.lower.inclusive else ">"
                conds.append(self.compare(op, arg, self._lit(row.lower.value)).text)
            if row.upper.value is not None:
                op = "<=" if row.upper.inclusive else "<"
                conds.append(self.compare(op, arg, self._lit(row.upper.value)).text)
            cond = " AND ".join(conds) if conds else self.d.true
            parts.append(f"WHEN {cond} THEN {_band_value(func, row)}")
        kind = "text" if func == "BAND_LABEL" else "num"
        return Sql(f"(CASE {' '.join(parts)} END)", kind, 0)

    @staticmethod
    def _lit(value: Fraction) -> exp.Expression:
        scale = _places(value)
        if scale == 0:
            return exp.Literal.number(int(value))
        return exp.Literal.number(f"{float(value):.{scale}f}" if scale < 15 else str(value))

    # ------------------------------------------------------------------ query
    def round6(self, x: str) -> str:
        # PostgreSQL has ROUND(numeric, int) but no ROUND(double precision, int).
        if self.d.name == "postgres":
            return f"ROUND(CAST({x} AS NUMERIC), 6)"
        return f"ROUND({x}, 6)"

    def ratio_out(self, node: exp.Expression) -> str:
        """A displayed ratio rounded half-up to 6 decimals, computed exactly.

        Floating point would be exact enough for ordinary ratios, but not for a huge one
        (a tiny denominator), and the display must match the in-process explanation.
        """
        node = self.resolve(node)
        if isinstance(node, exp.Case | exp.If):
            if isinstance(node, exp.If):
                ifs = [(node.this, node.args["true"])]
                default = node.args.get("false")
            else:
                ifs = [(b.this, b.args["true"]) for b in node.args.get("ifs") or []]
                default = node.args.get("default")
            parts = [f"WHEN {self.cond(c)} THEN {self.ratio_out(v)}" for c, v in ifs]
            tail = f" ELSE {self.ratio_out(default)}" if default is not None else ""
            return f"(CASE {' '.join(parts)}{tail} END)"
        if isinstance(node, exp.Null):
            return "NULL"
        if not isinstance(node, exp.Div):
            s = self.expr(node)
            if s.kind == "null":
                return "NULL"
            if s.scale > 6:
                raise CompileError(f"a ratio output finer than 6 decimals: {node.sql()}")
            return self.d.to_decimal.format(x=self.rescale(s, 6), s=6, f=10**6, inv="0.000001")
        exact = self._exact_ratio_out(node)
        ratio = self.guarded_of(node)
        if ratio is None:
            return exact
        sn, sd = self._scales(ratio)
        shift = sd - sn + 6
        rf, re_ = _ident("__rf_" + ratio), _ident("__re_" + ratio)
        f = repr(10.0**shift)
        s = f"({rf} * {f})"
        # The estimate times 10**6 rounds to the exact answer where it is clear of the
        # rounding midpoints by more than its error bound (and small enough that its
        # integer part is exact in a double).
        slack = f"({re_} * {f} + ABS({s}) * {_SLACK!r} + {_SLACK!r})"
        value = self.d.to_decimal.format(
            x=f"CAST(ROUND({s}) AS BIGINT)", s=6, f=10**6, inv="0.000001"
        )
        return (
            f"(CASE WHEN {re_} IS NOT NULL AND ABS({s}) < {float(2**52)!r} "
            f"AND ABS({s} - ROUND({s})) < 0.5 - {slack} THEN {value} ELSE {exact} END)"
        )

    def _exact_ratio_out(self, node: exp.Div) -> str:
        num, den = self.expr(node.left), self.expr(node.right)
        if "null" in (num.kind, den.kind):
            return "NULL"
        if not self.d.exact_ratio_display:
            return self.round6(self.expr(node).text)
        # value * 10**6 = N * 10**(sd - sn + 6) / D, rounded half away from zero.
        shift = den.scale - num.scale + 6
        sign = f"(CASE WHEN ({num.text} < 0) = ({den.text} < 0) THEN 1 ELSE -1 END)"

        def value(widen: str, intdiv: str) -> str:
            n = widen.format(x=f"ABS({num.text})") + (f" * {10**shift}" if shift > 0 else "")
            dd = widen.format(x=f"ABS({den.text})") + (f" * {10**-shift}" if shift < 0 else "")
            scaled = intdiv.format(a=f"(2 * {n} + {dd})", b=f"(2 * {dd})")
            return self.d.to_decimal.format(
                x=f"({sign} * {scaled})", s=6, f=10**6, inv="0.000001"
            )

        wide = value(self.d.widen, self.d.intdiv)
        if not self.d.intdiv64:
            return f"(CASE WHEN {den.text} = 0 THEN NULL ELSE {wide} END)"
        # 2*|N|*kn + |D|*kd and 2*|D|*kd fit 64 bits when |N|, |D| <= max / (2kn + 2kd);
        # N or D may be a 128-bit product, cast down once it is known to fit.
        bound = _INT64_MAX // (2 * 10 ** max(shift, 0) + 2 * 10 ** max(-shift, 0))
        return (
            f"(CASE WHEN {den.text} = 0 THEN NULL "
            f"WHEN ABS({num.text}) <= {bound} AND ABS({den.text}) <= {bound} "
            f"THEN {value(self.d.to_int0, self.d.intdiv64)} ELSE {wide} END)"
        )

    def output_value(self, s: Sql, typ: str) -> str:
        if typ == "text" and s.kind == "num" and s.scale == 0:
            return self.text(s)
        if s.kind == "num":
            if typ == "ratio":
                return self.round6(self.as_float(s))
            if s.scale == 0:
                return s.text
            return self.d.to_decimal.format(
                x=s.text, s=s.scale, f=10**s.scale, inv=f"0.{'0' * (s.scale - 1)}1"
            )
        if s.kind == "float":
            return self.round6(s.text)
        return s.text

    def compile(self, table: str) -> CompiledPolicy:
        ctes, final, columns = self.parts(table)
        with_sql = _with(self.d, ctes)
        sql = f"WITH {with_sql}\n{final}"
        return CompiledPolicy(self.p.id, self.d.name, self.as_of, sql, columns)

    def parts(
        self,
        table: str,
        source: Callable[[str], str] = lambda name: name,
        carry: Sequence[str] = (),
        prefix: str = "",
        out_prefix: str = "",
    ) -> tuple[list[tuple[str, str]], str, dict[str, tuple[tuple[str, ...], str]]]:
        """The query as CTEs and a final SELECT, for one policy or one link of a pack.

        ``source(name)`` is the column of ``table`` holding input ``name``; ``carry``
        columns pass through every layer untouched; CTE names start with ``prefix`` and
        output columns with ``out_prefix`` (see ``compile_pack``).
        """
        p, d = self.p, self.d
        self.cte_prefix = prefix
        ctes: list[tuple[str, str]] = []
        cols = sorted(p.inputs)
        carried = [_ident(c) for c in carry]
        raw, flagged, clean_cte = prefix + "raw", prefix + "flagged", prefix + "clean"
        # 1. base: exact integers for every numeric input.
        select = ['"entity_id"']
        for name in cols:
            col = _ident(source(name))
            typ = p.inputs[name].type
            if typ in ("money", "number", "share"):
                f = 10 ** SCALES[typ]
                # 64 bits hold any amount below 10**16 yuan, but not a share's 12 decimal
                # places beside an out-of-range integer part (a share of 10,000,000 must
                # come out invalid, not abort the query): shares take the wide type.
                if SCALES[typ] <= 2:
                    text = d.to_int.format(x=col, f=f, s=SCALES[typ], p=18)
                else:
                    # b: below 2**51 / f, the nearest double to x times f rounds to the exact
                    # integer (two correctly rounded operations, each off by <= 2**-53).
                    text = (d.to_int_wide or d.to_int).format(
                        x=col, f=f, s=SCALES[typ], p=38, b=2**51 // f
                    )
                select.append(f"{text} AS {_ident(name)}")
            elif typ in ("count", "date"):
                select.append(f"{d.to_int0.format(x=col)} AS {_ident(name)}")
            else:
                select.append(f"{col} AS {_ident(name)}" if source(name) != name else col)
            if typ == "date" and name + "_invalid" not in p.inputs:
                # (a policy may read the companion flag itself: select it once)
                flag = name + "_invalid"
                src = source(flag)
                select.append(_ident(flag) if src == flag else f"{_ident(src)} AS {_ident(flag)}")
        ctes.append((raw, f"SELECT {', '.join(select + carried)} FROM {table}"))
        # 2. invalid flags, read on raw values.
        flags = []
        never_invalid = set()
        for name in cols:
            inp = p.inputs[name]
            tests = []
            if inp.type == "date":
                tests.append(d.is_true.format(x=_ident(name + "_invalid")))
            if inp.type in ("money", "number", "share", "count") and not inp.allow_negative:
                tests.append(d.is_true.format(x=f"{_ident(name)} < 0"))
            if inp.invalid_when is not None:
                tests.append(d.is_true.format(x=self.cond(inp.invalid_when.tree)))
            flag = " OR ".join(f"({t})" for t in tests) if tests else d.false
            if not tests:
                never_invalid.add(name)
            if inp.relevant_when is not None and tests and name not in p.decided_relevance:
                relevant = d.is_true.format(x=self.cond(inp.relevant_when.tree))
                flag = f"{relevant} AND ({flag})"
            flags.append(f"({flag}) AS {_ident('__inv_' + name)}")
        ctes.append((flagged, f"SELECT {raw}.*, {', '.join(flags)} FROM {raw}"))
        clean = ['"entity_id"'] + [
            _ident(n) if n in never_invalid
            else f"CASE WHEN {_ident('__inv_' + n)} THEN NULL ELSE {_ident(n)} END AS {_ident(n)}"
            for n in cols
        ] + [_ident("__inv_" + n) for n in cols] + carried
        ctes.append((clean_cte, f"SELECT {', '.join(clean)} FROM {flagged}"))

        # 3. definitions (phase A: those missing-data tests may read), then missing flags,
        # then phase B (definitions reading any_missing / any_invalid).
        phase_b = self._reads_missing()
        prev = clean_cte
        prev = self._layers([n for n in self.defs if n not in phase_b], ctes, prev)
        missing = []
        for name in cols:
            inp = p.inputs[name]
            absent = f"{_ident(name)} IS NULL"
            if inp.missing_when_false:
                absent = f"NOT {d.is_true.format(x=_ident(name))}"
            if inp.required is None:
                test = d.false
            else:
                test = (
                    f"({d.is_true.format(x=self.cond(inp.required.tree))} AND "
                    f"{absent} AND NOT {_ident('__inv_' + name)})"
                )
            missing.append(f"{test} AS {_ident('__miss_' + name)}")
        # An input whose relevance rests on derived values: still unknown when invalid,
        # reported only where relevant (Policy.decided_relevance).
        late = [n for n in cols if n in p.decided_relevance and n not in never_invalid]
        for name in late:
            relevant = d.is_true.format(x=self.cond(p.inputs[name].relevant_when.tree))
            missing.append(f"({_ident('__inv_' + name)} AND {relevant}) AS {_ident('__rep_' + name)}")

        def reported(name: str, prefix: str) -> str:
            return _ident(("__rep_" if prefix == "__inv_" and name in late else prefix) + name)

        # (flags that are FALSE on every row are left out of the disjunctions)
        any_missing = (
            " OR ".join(_ident("__miss_" + n) for n in cols if p.inputs[n].required is not None)
            or d.false
        )
        any_invalid = (
            " OR ".join(reported(n, "__inv_") for n in cols if n not in never_invalid) or d.false
        )
        missing0, missing_cte = prefix + "missing0", prefix + "missing"
        ctes.append((missing0, f"SELECT {prev}.*, {', '.join(missing)} FROM {prev}"))
        ctes.append(
            (
                missing_cte,
                f"SELECT {missing0}.*, ({any_missing}) AS \"__any_missing\", "
                f"({any_invalid}) AS \"__any_invalid\" FROM {missing0}",
            )
        )
        prev = self._layers([n for n in self.defs if n in phase_b], ctes, missing_cte)

        # 4. verdict and outputs.
        verdict = ["CASE"]
        for key in ("ineligible", "needs_data", "needs_review"):
            if key in p.verdict:
                verdict.append(f"WHEN {self.cond(p.verdict[key].tree)} THEN '{key}'")
        verdict.append("ELSE 'eligible' END")
        out = ['"entity_id"', " ".join(verdict) + ' AS "verdict"']
        columns: dict[str, tuple[tuple[str, ...], str]] = {"verdict": (("verdict",), "text")}
        for o in p.outputs:
            base = "__".join(o.path)
            present = self.cond(o.present_when.tree) if o.present_when is not None else None

            def guard(text: str, present: str | None = present) -> str:
                return text if present is None else f"CASE WHEN {present} THEN {text} END"

            if present is not None:
                # The leaf is omitted (not null) when present_when is not TRUE.
                flag = f"__present__{base}"
                out.append(f"{d.is_true.format(x=present)} AS {_ident(flag)}")
                columns[flag] = (o.path, "present")

            if o.kind == "interval":
                for end, e in zip(("min", "max"), o.exprs, strict=True):
                    s = self.expr(e.tree)
                    out.append(f"{guard(self.output_value(s, 'count'))} AS {_ident(base + '__' + end)}")
                    columns[f"{base}__{end}"] = (o.path, "interval_" + end)
            elif o.kind == "list":
                items = [
                    (self.cond(cond.tree), f"{self.text(self.expr(text.tree))} || ','")
                    for cond, text in zip(o.exprs[::2], o.exprs[1::2], strict=True)
                ]
                out.append(f"{guard(self.text_list(items))} AS {_ident(base)}")
                columns[base] = (o.path, "list")
            elif o.type == "ratio":
                out.append(f"{guard(self.ratio_out(o.exprs[0].tree))} AS {_ident(base)}")
                columns[base] = (o.path, "ratio")
            else:
                s = self.expr(o.exprs[0].tree)
                out.append(f"{guard(self.output_value(s, o.type))} AS {_ident(base)}")
                columns[base] = (o.path, o.type or s.kind)
        for label, prefix, anyone in (
            ("missing_fields", "__miss_", "__any_missing"),
            ("invalid_fields", "__inv_", "__any_invalid"),
        ):
            # (inputs whose flag is FALSE on every row are never listed)
            flagged_names = [
                n for n in cols
                if (p.inputs[n].required is not None if prefix == "__miss_" else n not in never_invalid)
            ]
            by_path: dict[str, list[str]] = {}
            for n in sorted(flagged_names, key=self._path):
                by_path.setdefault(self._path(n), []).append(reported(n, prefix))
            # Inputs reported under one path (the parts of a split) are listed once.
            items = [
                (flags[0] if len(flags) == 1 else f"({' OR '.join(flags)})", f"'{path},'")
                for path, flags in by_path.items()
            ]
            # Most rows lack nothing: skip building the list for them.
            listed = f"CASE WHEN {_ident(anyone)} THEN {self.text_list(items)} ELSE '' END"
            out.append(f"({listed if items else chr(39) * 2}) AS {_ident(label)}")
            columns[label] = ((label,), "list")
        if out_prefix:
            out = ['"entity_id"'] + [
                _rename(item, out_prefix) for item in out[1:]
            ]
            columns = {out_prefix + k: v for k, v in columns.items()}
        return ctes, f"SELECT {', '.join(out + carried)} FROM {prev}", columns

    def text_list(self, items: list[tuple[str, str]]) -> str:
        """The texts whose conditions hold, concatenated in order ('' when none does)."""
        if not items:
            return "''"
        if self.d.concat:
            # One call skipping NULLs: one string built per row, not one per item.
            return self.d.concat.format(
                args=", ".join(f"CASE WHEN {c} THEN {t} END" for c, t in items)
            )
        return " || ".join(f"CASE WHEN {c} THEN {t} ELSE '' END" for c, t in items)

    def text(self, s: Sql) -> str:
        """A value as text (a year in a list of window years)."""
        if s.kind == "text":
            return s.text
        return f"CAST({s.text} AS {self.d.text_type})"

    def _path(self, name: str) -> str:
        from kechuang.rules.facts import COLUMNS_BY_NAME

        return COLUMNS_BY_NAME[name].reported_path(self.as_of)

    def _reads_missing(self) -> set[str]:
        """Definitions that read any_missing / any_invalid, directly or not."""
        result: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, e in self.defs.items():
                if name in result:
                    continue
                reads = e.names
                if reads & {"any_missing", "any_invalid"} or reads & result:
                    result.add(name)
                    changed = True
        return result

    def _layers(self, names: list[str], ctes: list, prev: str) -> str:
        """Materialise definitions level by level; return the last CTE's name."""
        todo = [n for n in names if n not in self.inline and n not in self.expand]
        level: dict[str, int] = {}

        def depth(n: str) -> int:
            if n in level:
                return level[n]
            deps = self._deps(n)
            level[n] = 1 + max((depth(x) for x in deps if x in todo), default=0)
            return level[n]

        for n in todo:
            depth(n)
        for lv in sorted(set(level.values())):
            cols, copies, seen = [], [], {}
            for n in [n for n in todo if level[n] == lv]:
                s = self.expr(self.defs[n].tree)
                if s.kind == "float":
                    raise CompileError(f"'{n}' mixes a division into arithmetic; compare it instead")
                self.def_sql[n] = s
                if s.text in seen:
                    # The same expression (a score's min and max where no expert range
                    # applies): computed once, copied in the next layer.
                    copies.append(f"{_ident(seen[s.text])} AS {_ident(n)}")
                    continue
                seen[s.text] = n
                cols.append(f"{s.text} AS {_ident(n)}")
            for body in (cols, copies):
                if body:
                    name = f"{self.cte_prefix}d{len(ctes)}"
                    ctes.append((name, f"SELECT {prev}.*, {', '.join(body)} FROM {prev}"))
                    prev = name
        return prev

    def _deps(self, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        """Materialised definitions a definition reads (through inlined ratios too)."""
        out: set[str] = set()
        for dep in self.defs[name].names:
            if dep in self.guarded:
                out |= {f"__rf_{dep}", f"__re_{dep}"}
            if (dep in self.inline or dep in self.expand) and dep not in seen:
                out |= self._deps(dep, seen | {dep})
            elif dep in self.defs:
                out.add(dep)
        for pname, param in self.p.parameters.items():
            if pname in self.defs[name].names and param.select_by is not None:
                hoisted = self.param_cols.get(pname)
                if hoisted is not None and name != hoisted:
                    out.add(hoisted)  # read through its hidden column
                    continue
                out |= {x for x in param.select_by.names if x in self.defs}
                key = self.param_keys.get(param.select_by.tree.sql())
                if key is not None:
                    out.add(key)
        return out


def _band_value(func: str, row) -> str:
    if func == "BAND_LABEL":
        return "'" + row.label + "'"
    return str(row.points[0] if func == "BAND_MIN" else row.points[1])


class _NotNarrow(Exception):
    """A band row whose operands cannot be bounded for 64-bit arithmetic."""


class _NotFloat(Exception):
    """A guarded band whose rows cannot be decided on the double estimate."""


# A double polynomial of integers of depth k is off by at most about k*2^-53 times the
# polynomial of absolute values: 2^-40 holds that for any depth below 8,000.
_ERR = repr(2.0**-40)
# Relative slack for the rounding of the comparisons and error bounds themselves.
_SLACK = 2.0**-45


def _reached_when(node: exp.Expression) -> exp.Expression | None:
    """A condition TRUE on every row where ``node`` is evaluated (None: every row).

    The conjunction of the WHEN conditions of the CASE branches it sits in: a superset of
    the rows that take those branches (earlier branches are not excluded).
    """
    conds = []
    while node.parent is not None:
        parent = node.parent
        if isinstance(parent, exp.If) and node is parent.args.get("true"):
            conds.append(exp.Paren(this=parent.this.copy()))
        node = parent
    if not conds:
        return None
    out = conds[0]
    for c in conds[1:]:
        out = exp.And(this=out, expression=c)
    return out


def _fscale(x: str, places: int) -> str:
    return x if places == 0 else f"({x} * {float(10**places)!r})"


_INT64_MAX = 2**63 - 1


def _int_literal(text: str) -> int | None:
    """The value of an integer literal as compiled (``5``, ``-5``, ``(-5)``), else None."""
    bare = text.strip("()")
    return int(bare) if bare.lstrip("-").isdigit() else None


def _is_column(text: str) -> bool:
    return text.startswith('"') and text.endswith('"') and '"' not in text[1:-1]


def _with(d: Dialect, ctes: list[tuple[str, str]]) -> str:
    return ",\n".join(f"{name} {d.cte_keyword} ({body}{d.cte_suffix})" for name, body in ctes)


def _tiling(rows) -> list | None:
    """The band's rows in ascending order if they tile one interval (no gap, no overlap)."""
    for r in rows:
        lo, hi = r.lower, r.upper
        if lo.value is not None and hi.value is not None and (
            lo.value > hi.value or (lo.value == hi.value and not (lo.inclusive and hi.inclusive))
        ):
            return None
    if sum(r.lower.value is None for r in rows) > 1:
        return None
    ordered = sorted(
        rows, key=lambda r: (r.lower.value is not None, r.lower.value or 0, not r.lower.inclusive)
    )
    for a, b in itertools.pairwise(ordered):
        if a.upper.value is None or b.lower.value is None:
            return None
        if a.upper.value != b.lower.value or a.upper.inclusive == b.lower.inclusive:
            return None
    return ordered


def _rename(item: str, out_prefix: str) -> str:
    """``<expr> AS "name"`` -> ``<expr> AS "<out_prefix>name"``."""
    head, sep, name = item.rpartition(' AS "')
    if not sep:
        raise CompileError(f"internal: an output without a name: {item[:80]}")
    return f'{head} AS "{out_prefix}{name}'


def compile_pack(
    policies: Sequence[Policy], as_of: dt.date, dialect: str = "duckdb", table: str = "facts"
) -> CompiledPolicy:
    """Compile several policies into one query: one pass over ``table``, no join.

    Each policy's layers read the previous policy's last layer, which carries the inputs
    later policies still need and the outputs so far; its outputs are named
    ``<policy>__<column>``. Rows stay one per input row, so nothing is joined on
    ``entity_id`` (a join of millions of rows would spill to disk).
    """
    if not policies:
        raise CompileError("没有政策 no policy given")
    d = get_dialect(dialect)

    def needs(policy: Policy) -> list[str]:
        out = []
        for name in sorted(policy.inputs):
            out.append(name)
            if policy.inputs[name].type == "date" and name + "_invalid" not in policy.inputs:
                out.append(name + "_invalid")
        return out

    wanted = [needs(p) for p in policies]
    union = list(dict.fromkeys(n for names in wanted for n in names))
    src = ", ".join(f"{_ident(n)} AS {_ident('__src__' + n)}" for n in union)
    ctes: list[tuple[str, str]] = [("pack_src", f'SELECT "entity_id", {src} FROM {table}')]
    prev, outputs, columns = "pack_src", [], {}
    for i, policy in enumerate(policies):
        later = list(dict.fromkeys(n for names in wanted[i + 1 :] for n in names))
        carry = outputs + ["__src__" + n for n in later]
        parts, final, cols = Compiler(policy, as_of, d).parts(
            prev, source=lambda n: "__src__" + n, carry=carry,
            prefix=f"p{i}_", out_prefix=f"{policy.id}__",
        )
        ctes += parts
        ctes.append((f"p{i}_out", final))
        prev = f"p{i}_out"
        outputs += list(cols)
        columns.update(cols)
    with_sql = _with(d, ctes)
    sql = f"WITH {with_sql}\nSELECT \"entity_id\", {', '.join(map(_ident, outputs))} FROM {prev}"
    pack_id = "+".join(p.id for p in policies)
    return CompiledPolicy(pack_id, d.name, as_of, sql, columns)


def compile_sql(
    policy: Policy, as_of: dt.date, dialect: str = "duckdb", table: str = "facts"
) -> CompiledPolicy:
    """Compile ``policy`` as of ``as_of`` to one query over ``table`` for ``dialect``."""
    d = get_dialect(dialect)
    # Not parsed back here (that took most of the compile time): the test suite runs every
    # policy's query on every engine.
    return Compiler(policy, as_of, d).compile(table)


__all__ = ["BUILTINS", "CompileError", "CompiledPolicy", "Expr", "compile_pack", "compile_sql"]
