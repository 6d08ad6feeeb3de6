"""Ratios: compared by cross-multiplying, displayed exactly, decided in doubles where safe.

A ratio's numerator and denominator become hidden columns (the denominator kept
non-negative); on DuckDB a ratio of products is first decided on a double estimate with a
bound on its error, and only the rows the bound cannot settle take 128-bit integers.
"""

from __future__ import annotations

from fractions import Fraction

import sqlglot
from sqlglot import exp

from kechuang.rules.compile.fragments import INT64_MAX, CompileError, Sql, ident, int_literal
from kechuang.rules.policy import Expr


class NotFloat(Exception):
    """A guarded band whose rows cannot be decided on the double estimate."""


# A double polynomial of integers of depth k is off by at most about k*2^-53 times the
# polynomial of absolute values: 2^-40 holds that for any depth below 8,000.
_ERR = repr(2.0**-40)
# Relative slack for the rounding of the comparisons and error bounds themselves.
SLACK = 2.0**-45


def _fscale(x: str, places: int) -> str:
    return x if places == 0 else f"({x} * {float(10**places)!r})"


class RatioMixin:
    """The :class:`~kechuang.rules.compile.query.Compiler`'s ratio methods."""

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
            f"+ {q} * {SLACK} END)",
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
            raise NotFloat
        t = self.expr(right)
        value = int_literal(t.text) if t.kind == "num" else None
        if value is None:
            raise NotFloat
        sn, sd = self._scales(self.fmode)
        # ratio = (N / D) * 10**(sd - sn): compare the unscaled quotient with t * 10**(sn - sd).
        bound = repr(float(Fraction(value, 10**t.scale) * Fraction(10) ** (sn - sd)))
        self.fbounds.append(bound)
        return Sql(f"({ident('__rf_' + self.fmode)} {op} {bound})", "bool")

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
        rf, re_ = ident("__rf_" + ratio), ident("__re_" + ratio)
        f = repr(10.0**shift)
        s = f"({rf} * {f})"
        # The estimate times 10**6 rounds to the exact answer where it is clear of the
        # rounding midpoints by more than its error bound (and small enough that its
        # integer part is exact in a double).
        slack = f"({re_} * {f} + ABS({s}) * {SLACK!r} + {SLACK!r})"
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
        bound = INT64_MAX // (2 * 10 ** max(shift, 0) + 2 * 10 ** max(-shift, 0))
        return (
            f"(CASE WHEN {den.text} = 0 THEN NULL "
            f"WHEN ABS({num.text}) <= {bound} AND ABS({den.text}) <= {bound} "
            f"THEN {value(self.d.to_int0, self.d.intdiv64)} ELSE {wide} END)"
        )
