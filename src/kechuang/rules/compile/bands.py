"""Bands (threshold -> points tables) as CASE expressions, each lookup computed once.

A lookup gets a hidden column; a band whose rows tile an interval is tested from the top,
one bound per row, and an amount that fits compares in 64-bit integers.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

from sqlglot import exp

from kechuang.rules.compile.fragments import INT64_MAX, Sql, ident, int_literal, is_column, places
from kechuang.rules.compile.ratios import SLACK, NotFloat
from kechuang.rules.expressions import names as ex_names
from kechuang.rules.policy import Expr


class NotNarrow(Exception):
    """A band row whose operands cannot be bounded for 64-bit arithmetic."""


def _band_value(func: str, row) -> str:
    if func == "BAND_LABEL":
        return "'" + row.label + "'"
    return str(row.points[0] if func == "BAND_MIN" else row.points[1])


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


class BandMixin:
    """The :class:`~kechuang.rules.compile.query.Compiler`'s band methods."""

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

    def band(self, func: str, band_name: str, arg: exp.Expression) -> Sql:
        exact = self._exact_band(func, band_name, arg)
        ratio = self.guarded_of(self.resolve(arg))
        if ratio is None:
            return exact
        self.fmode, self.fbounds = ratio, []
        try:
            fast = self._band_rows(func, self.p.bands[band_name], arg, [])
        except NotFloat:
            return exact
        finally:
            self.fmode = None
        rf, re_ = ident("__rf_" + ratio), ident("__re_" + ratio)
        clear = " AND ".join(
            f"ABS({rf} - {t}) > {re_} + {abs(float(t)) * SLACK!r}"
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
            except NotNarrow:
                self.narrow = None
                return self._band_rows(func, band, arg, parts)
            bound = INT64_MAX // max(self.narrow + [1])
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

    def _narrow_compare(self, op: str, num: Sql, den: Sql, t: Sql, scale: int, prod: int) -> Sql:
        """``num / den OP t`` in 64-bit integers, for operands the band has bounded.

        Records each operand's multiplier in ``self.narrow``: the band guards the row with
        ``|num|, den <= (2^63 - 1) / multiplier``, so no product can overflow.
        """
        t_value = int_literal(t.text)
        if t_value is None or not is_column(num.text):
            raise NotNarrow
        self.narrow += [10 ** (scale - num.scale), abs(t_value) * 10 ** (scale - prod)]
        lhs = self.rescale(num, scale, wide=False)
        rhs = self.rescale(Sql(f"({t.text} * {den.text})", "num", prod), scale, wide=False)
        return Sql(f"({lhs} {op} {rhs})", "bool")

    @staticmethod
    def _lit(value: Fraction) -> exp.Expression:
        scale = places(value)
        if scale == 0:
            return exp.Literal.number(int(value))
        return exp.Literal.number(f"{float(value):.{scale}f}" if scale < 15 else str(value))
