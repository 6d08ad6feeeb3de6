"""The compiler: a policy as of a date -> CTE layers and one final SELECT."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlglot import exp

from kechuang.rules.compile.bands import BandMixin
from kechuang.rules.compile.dialects import Dialect
from kechuang.rules.compile.fragments import (
    CompiledPolicy,
    CompileError,
    Sql,
    ident,
    rename_output,
    with_ctes,
)
from kechuang.rules.compile.nodes import NodeMixin
from kechuang.rules.compile.ratios import RatioMixin
from kechuang.rules.facts import SCALES
from kechuang.rules.policy import Expr, Policy


class Compiler(NodeMixin, BandMixin, RatioMixin):
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
        self.cols = sorted(policy.inputs)
        self.cte_prefix = ""
        self.never_invalid: set[str] = set()  # inputs no test can find invalid (_input_ctes)
        self.late: list[str] = []  # invalid inputs reported only where relevant (_missing_ctes)

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
        with_sql = with_ctes(self.d, ctes)
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
        self.cte_prefix = prefix
        carried = [ident(c) for c in carry]
        ctes: list[tuple[str, str]] = []
        prev = self._input_ctes(table, source, carried, ctes)
        # Definitions in two phases: those the missing-data tests may read, then those
        # reading any_missing / any_invalid.
        phase_b = self._reads_missing()
        prev = self._layers([n for n in self.defs if n not in phase_b], ctes, prev)
        prev = self._missing_ctes(prev, ctes)
        prev = self._layers([n for n in self.defs if n in phase_b], ctes, prev)
        out, columns = self._outputs()
        if out_prefix:
            out = ['"entity_id"'] + [rename_output(item, out_prefix) for item in out[1:]]
            columns = {out_prefix + k: v for k, v in columns.items()}
        return ctes, f"SELECT {', '.join(out + carried)} FROM {prev}", columns

    def _input_ctes(
        self, table: str, source: Callable[[str], str], carried: list[str], ctes: list
    ) -> str:
        """The inputs as exact integers (raw), their invalid flags read on the raw values
        (flagged), and the inputs with invalid values nulled (clean): the last CTE's name."""
        p, d, prefix = self.p, self.d, self.cte_prefix
        raw, flagged, clean_cte = prefix + "raw", prefix + "flagged", prefix + "clean"
        select = ['"entity_id"']
        for name in self.cols:
            col = ident(source(name))
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
                select.append(f"{text} AS {ident(name)}")
            elif typ in ("count", "date"):
                select.append(f"{d.to_int0.format(x=col)} AS {ident(name)}")
            else:
                select.append(f"{col} AS {ident(name)}" if source(name) != name else col)
            if typ == "date" and name + "_invalid" not in p.inputs:
                # (a policy may read the companion flag itself: select it once)
                flag = name + "_invalid"
                src = source(flag)
                select.append(ident(flag) if src == flag else f"{ident(src)} AS {ident(flag)}")
        ctes.append((raw, f"SELECT {', '.join(select + carried)} FROM {table}"))
        flags = []
        self.never_invalid = set()
        for name in self.cols:
            inp = p.inputs[name]
            tests = []
            if inp.type == "date":
                tests.append(d.is_true.format(x=ident(name + "_invalid")))
            if inp.type in ("money", "number", "share", "count") and not inp.allow_negative:
                tests.append(d.is_true.format(x=f"{ident(name)} < 0"))
            if inp.invalid_when is not None:
                tests.append(d.is_true.format(x=self.cond(inp.invalid_when.tree)))
            flag = " OR ".join(f"({t})" for t in tests) if tests else d.false
            if not tests:
                self.never_invalid.add(name)
            if inp.relevant_when is not None and tests and name not in p.decided_relevance:
                relevant = d.is_true.format(x=self.cond(inp.relevant_when.tree))
                flag = f"{relevant} AND ({flag})"
            flags.append(f"({flag}) AS {ident('__inv_' + name)}")
        ctes.append((flagged, f"SELECT {raw}.*, {', '.join(flags)} FROM {raw}"))
        clean = ['"entity_id"'] + [
            ident(n) if n in self.never_invalid
            else f"CASE WHEN {ident('__inv_' + n)} THEN NULL ELSE {ident(n)} END AS {ident(n)}"
            for n in self.cols
        ] + [ident("__inv_" + n) for n in self.cols] + carried
        ctes.append((clean_cte, f"SELECT {', '.join(clean)} FROM {flagged}"))
        return clean_cte

    def _missing_ctes(self, prev: str, ctes: list) -> str:
        """Each required input's missing flag, then ``__any_missing`` and
        ``__any_invalid``: the last CTE's name."""
        p, d = self.p, self.d
        missing = []
        for name in self.cols:
            inp = p.inputs[name]
            absent = f"{ident(name)} IS NULL"
            if inp.missing_when_false:
                absent = f"NOT {d.is_true.format(x=ident(name))}"
            if inp.required is None:
                test = d.false
            else:
                test = (
                    f"({d.is_true.format(x=self.cond(inp.required.tree))} AND "
                    f"{absent} AND NOT {ident('__inv_' + name)})"
                )
            missing.append(f"{test} AS {ident('__miss_' + name)}")
        # An input whose relevance rests on derived values: still unknown when invalid,
        # reported only where relevant (Policy.decided_relevance).
        self.late = [n for n in self.cols if n in p.decided_relevance and n not in self.never_invalid]
        for name in self.late:
            relevant = d.is_true.format(x=self.cond(p.inputs[name].relevant_when.tree))
            missing.append(f"({ident('__inv_' + name)} AND {relevant}) AS {ident('__rep_' + name)}")
        # (flags that are FALSE on every row are left out of the disjunctions)
        any_missing = (
            " OR ".join(ident("__miss_" + n) for n in self.cols if p.inputs[n].required is not None)
            or d.false
        )
        any_invalid = (
            " OR ".join(self._reported(n, "__inv_") for n in self.cols if n not in self.never_invalid)
            or d.false
        )
        missing0, missing_cte = self.cte_prefix + "missing0", self.cte_prefix + "missing"
        ctes.append((missing0, f"SELECT {prev}.*, {', '.join(missing)} FROM {prev}"))
        ctes.append(
            (
                missing_cte,
                f"SELECT {missing0}.*, ({any_missing}) AS \"__any_missing\", "
                f"({any_invalid}) AS \"__any_invalid\" FROM {missing0}",
            )
        )
        return missing_cte

    def _reported(self, name: str, prefix: str) -> str:
        """The flag that reports ``name`` as missing (``__miss_``) or invalid (``__inv_``)."""
        late = prefix == "__inv_" and name in self.late
        return ident(("__rep_" if late else prefix) + name)

    def _outputs(self) -> tuple[list[str], dict[str, tuple[tuple[str, ...], str]]]:
        """The final SELECT's items (entity_id, the verdict, every output field, the lists
        of missing and invalid fields) and each output column's path and type."""
        p, d = self.p, self.d
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
                out.append(f"{d.is_true.format(x=present)} AS {ident(flag)}")
                columns[flag] = (o.path, "present")

            if o.kind == "interval":
                for end, e in zip(("min", "max"), o.exprs, strict=True):
                    s = self.expr(e.tree)
                    out.append(f"{guard(self.output_value(s, 'count'))} AS {ident(base + '__' + end)}")
                    columns[f"{base}__{end}"] = (o.path, "interval_" + end)
            elif o.kind == "list":
                items = [
                    (self.cond(cond.tree), f"{self.text(self.expr(text.tree))} || ','")
                    for cond, text in zip(o.exprs[::2], o.exprs[1::2], strict=True)
                ]
                out.append(f"{guard(self.text_list(items))} AS {ident(base)}")
                columns[base] = (o.path, "list")
            elif o.type == "ratio":
                out.append(f"{guard(self.ratio_out(o.exprs[0].tree))} AS {ident(base)}")
                columns[base] = (o.path, "ratio")
            else:
                s = self.expr(o.exprs[0].tree)
                out.append(f"{guard(self.output_value(s, o.type))} AS {ident(base)}")
                columns[base] = (o.path, o.type or s.kind)
        for label, prefix, anyone in (
            ("missing_fields", "__miss_", "__any_missing"),
            ("invalid_fields", "__inv_", "__any_invalid"),
        ):
            # (inputs whose flag is FALSE on every row are never listed)
            flagged_names = [
                n for n in self.cols
                if (p.inputs[n].required is not None if prefix == "__miss_" else n not in self.never_invalid)
            ]
            by_path: dict[str, list[str]] = {}
            for n in sorted(flagged_names, key=self._path):
                by_path.setdefault(self._path(n), []).append(self._reported(n, prefix))
            # Inputs reported under one path (the parts of a split) are listed once.
            items = [
                (flags[0] if len(flags) == 1 else f"({' OR '.join(flags)})", f"'{path},'")
                for path, flags in by_path.items()
            ]
            # Most rows lack nothing: skip building the list for them.
            listed = f"CASE WHEN {ident(anyone)} THEN {self.text_list(items)} ELSE '' END"
            out.append(f"({listed if items else chr(39) * 2}) AS {ident(label)}")
            columns[label] = ((label,), "list")
        return out, columns

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
                    copies.append(f"{ident(seen[s.text])} AS {ident(n)}")
                    continue
                seen[s.text] = n
                cols.append(f"{s.text} AS {ident(n)}")
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
