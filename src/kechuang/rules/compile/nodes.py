"""Expressions, one method per sqlglot node type, as exact integers (value * 10**scale).

Additions rescale to the larger scale, products add scales, comparisons with a division
cross-multiply, and NULL stays unknown on every engine.
"""

from __future__ import annotations

from fractions import Fraction

from sqlglot import exp

from kechuang.rules.compile.fragments import INT64_MAX, CompileError, Sql, ident, places
from kechuang.rules.explain.interpreter import literal
from kechuang.rules.facts import SCALES, date_int

_FLIP = {exp.GT: "<", exp.GTE: "<=", exp.LT: ">", exp.LTE: ">=", exp.EQ: "=", exp.NEQ: "<>"}
_OPS = {exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.EQ: "=", exp.NEQ: "<>"}
_SQL_OP = {v: k for k, v in _OPS.items()}


class NodeMixin:
    """The :class:`~kechuang.rules.compile.query.Compiler`'s expression methods."""

    def num(self, value: Fraction) -> Sql:
        scale = places(value)
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

    def name(self, name: str) -> Sql:
        if name in self.p.inputs:
            typ = self.p.inputs[name].type
            if typ == "bool":
                return Sql(ident(name), "bool")
            if typ == "text":
                return Sql(ident(name), "text")
            return Sql(ident(name), "num", SCALES[typ])
        if name in self.p.parameters:
            hoisted = self.param_cols.get(name)
            if hoisted in self.def_sql:
                s = self.def_sql[hoisted]
                return Sql(ident(hoisted), s.kind, s.scale)
            return self.parameter(name)
        if name in self.inline or name in self.expand:
            return self.expr(self.defs[name].tree)
        if name in self.def_sql:
            s = self.def_sql[name]
            return Sql(ident(name), s.kind, s.scale)
        if name == "as_of":
            return Sql(str(date_int(self.as_of)), "num", 0)
        if name == "as_of_year":
            return Sql(str(self.as_of.year), "num", 0)
        if name in ("any_missing", "any_invalid"):
            return Sql(ident("__" + name), "bool")
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
            key = Sql(ident(key_col), self.def_sql[key_col].kind, self.def_sql[key_col].scale)
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
            return Sql(f"({ident(col)} IS NOT NULL OR {ident('__inv_' + col)})", "bool")
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
        bound = (INT64_MAX - f) // 2
        return Sql(
            f"(CASE WHEN {x.text} BETWEEN -{bound} AND {bound} THEN {narrow} ELSE {wide} END)",
            "num",
            2,
        )
