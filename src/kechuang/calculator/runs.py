"""The engine side of a 免申即享 run: compile, push down, hash, stack.

Everything here runs inside the app database. The registry's facts SELECT
(:func:`kechuang.registry.selectors.enterprise_facts_as_of`) is materialised once per
run in a table kept for the run's life (what it read: a result's explanation is
re-evaluated from its row); each policy's compiled query reads that table and its rows
go straight into ``MianshenResult`` with one ``INSERT … SELECT``. No enterprise passes
through Python on the way, except to hash the facts (a stream, in a fixed order).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

from django.db import connection, transaction

from kechuang.errors import KechuangError
from kechuang.registry.facts import COLUMN_TYPES, COLUMNS, convert_row
from kechuang.registry.selectors import enterprise_facts_as_of
from kechuang.rules import get_policy, policy_ids
from kechuang.rules.compile.to_sql import CompiledPolicy, compile_sql
from kechuang.rules.policy import OPEN_START, Parameter, Policy, TimelineEntry
from kechuang.rules.runners.arrow import decode
from kechuang.rules.runners.postgres_runner import PG_TYPES

#: Django's database vendor -> the rules compiler's dialect.
DIALECT_OF_VENDOR = {"sqlite": "sqlite", "postgresql": "postgres"}

#: Output names that hold a policy's benefit amount (money), in order of preference.
BENEFIT_OUTPUTS = ("benefit", "benefit_amount", "reward_amount", "reward", "amount", "grant_amount")


def dialect() -> str:
    try:
        return DIALECT_OF_VENDOR[connection.vendor]
    except KeyError:
        raise KechuangError(
            f"免申即享 runs need SQLite or PostgreSQL, not {connection.vendor}"
        ) from None


def check_policies(ids: Iterable[str]) -> list[str]:
    """The policy ids, checked to exist; unknown ids are refused by name."""
    known = set(policy_ids())
    ids = [i.strip() for i in ids if i and i.strip()]
    if not ids:
        raise KechuangError("请选择至少一项政策 / choose at least one policy", field="policies")
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise KechuangError(
            f"未知政策 unknown policy: {', '.join(unknown)} (known: {', '.join(sorted(known))})",
            field="policies",
        )
    return list(dict.fromkeys(ids))


# --------------------------------------------------------------------------- parameters


def decimal_text(value: Fraction | Decimal | int | None) -> str | None:
    """A parameter value as exact decimal text.

    >>> decimal_text(Fraction(3, 4)), decimal_text(Fraction(200000)), decimal_text(None)
    ('0.75', '200000', None)
    """
    if value is None:
        return None
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    text = format(Decimal(value).normalize(), "f")
    return text


def parameters_at(policy: Policy, as_of: dt.date) -> dict[str, Any]:
    """Every parameter value a run uses, with since when and under which article.

    A parameter chosen per row by its own date (``select_by``) is kept as its whole
    timeline: the row decides which entry applies."""
    out: dict[str, Any] = {}
    for name, param in policy.parameters.items():
        entries = param.entries if param.select_by is not None else [param.at(as_of)]
        out[name] = [
            {
                "value": decimal_text(e.value),
                "since": e.since.isoformat() if e.since else None,
                "until": e.end.isoformat() if e.end else None,
                "article": e.article,
            }
            for e in entries
            if e is not None
        ]
    return out


def policy_with_overrides(policy: Policy, overrides: dict[str, str], as_of: dt.date) -> Policy:
    """A copy of ``policy`` whose parameters in force on ``as_of`` take new values.

    The law in force is untouched: the copy lives only in this process, for a what-if
    run or explanation. Each changed entry's article says it is a reform."""
    if not overrides:
        return policy
    params = dict(policy.parameters)
    for name, text in overrides.items():
        if name not in params:
            raise KechuangError(f"政策 {policy.id} 没有参数 {name} / no such parameter", field=name)
        try:
            value = Fraction(Decimal(str(text).strip()))
        except Exception:
            raise KechuangError(
                f"参数 {name} 的值不是数字 / not a number: {text!r}", field=name
            ) from None
        params[name] = _override(params[name], value, as_of)
    return replace(policy, parameters=params)


def _override(param: Parameter, value: Fraction, as_of: dt.date) -> Parameter:
    article = f"reform (what-if, not in force): {decimal_text(value)}"
    entries = list(param.entries)
    for i, e in enumerate(entries):
        if e.start <= as_of and (e.end is None or as_of <= e.end):
            entries[i] = TimelineEntry(
                e.start, e.end, value, f"{article}; was {decimal_text(e.value)}", e.line
            )
            return replace(param, entries=tuple(entries))
    if any(e.start > as_of for e in entries):
        raise KechuangError(
            f"参数 {param.name} 在 {as_of} 没有生效值 / no value in force", field=param.name
        )
    entries.append(TimelineEntry(as_of, None, value, article, None))
    return replace(param, entries=tuple(entries))


def mianshen_policy_ids() -> list[str]:
    """The 免申即享 packs: policies that compute a benefit amount from registry facts.

    Recognition rules (hte, tsme) compute no amount, and per-application rules (voucher,
    R&D super-deduction) read transaction facts the registry does not hold."""
    return [pid for pid in policy_ids() if benefit_output(get_policy(pid)) is not None]


def missing_labels(policy_id: str, as_of: dt.date, missing_fields: str) -> list[str]:
    """The facts a ``needs_data`` result lacks, as people read them: the policy's own
    description of each input, with its path in the facts (``financials.2024.rd_expense``)."""
    from kechuang.rules.facts import COLUMNS_BY_NAME

    policy = get_policy(policy_id)
    by_path: dict[str, str] = {}
    for name, inp in policy.inputs.items():
        if name in COLUMNS_BY_NAME:
            # The first input reported under a path describes it (the 2022 split as a whole
            # comes before its two periods).
            by_path.setdefault(COLUMNS_BY_NAME[name].reported_path(as_of), inp.description.zh)
    paths = [p for p in missing_fields.split(",") if p]
    return [f"{by_path[p]}（{p}）" if p in by_path else p for p in paths]


def benefit_output(policy: Policy) -> tuple[str, ...] | None:
    """The output path holding the policy's benefit amount, if it has one."""
    money = {o.path: o for o in policy.outputs if o.kind == "value" and o.type == "money"}
    for name in BENEFIT_OUTPUTS:
        if (name,) in money:
            return (name,)
    return None


# --------------------------------------------------------------------------- stacking


@dataclass(frozen=True)
class StackingRule:
    """``policy``'s benefit excludes (or caps) ``other``'s for the same enterprise."""

    policy: str
    other: str
    kind: str  # "excludes" | "caps"
    #: excludes: which one is paid when both qualify ("higher" or "this").
    keep: str = "higher"
    #: caps: the parameter of ``policy`` bounding the two benefits together.
    total_parameter: str | None = None
    article: str = ""


def stacking_rules(policy: Policy) -> list[StackingRule]:
    """The ``stacking:`` entries of a policy file (不得重复享受), as the engine read and
    checked them (``kechuang.rules.policy.Stacking``)::

        stacking:
          - excludes: district_little_giant_match   # paid one or the other
            keep: higher                             # or: this
            article: "…第八条 同一事项不得重复享受"
          - caps: other_policy                       # both, but together at most
            total: combined_cap                      # a parameter of this policy
            article: "…"
    """
    rules = []
    for s in policy.stacking:
        article = s.article
        if s.reason is not None:
            article = f"{s.reason.zh} ({article})"
        rules.append(
            StackingRule(
                policy=policy.id,
                other=s.other,
                kind=s.kind,
                keep=s.keep,
                total_parameter=s.total,
                article=article,
            )
        )
    return rules


# --------------------------------------------------------------------------- SQL


def facts_table(run_id: int) -> str:
    return f"kc_mianshen_facts_{int(run_id)}"


def parallel_inserts() -> bool:
    """Whether policies may be inserted on several connections at once: PostgreSQL, and
    no transaction open here (other connections could not see its rows)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def materialise_facts(
    run_id: int, as_of: dt.date, enterprise_ids: list[int] | None, *, index: bool = True
) -> int:
    """The run's facts rows in a table of the run; returns the count.

    The table is kept for the run's life (dropped with the run): it is what the run
    read, and a result's explanation re-evaluates its row, whatever the registry holds
    later. A plain (logged) table: it must survive the worker's session and a crash.
    ``index=False`` leaves the index for result pages to :func:`index_facts` (the
    policies' queries read every row and do not need it)."""
    sql = enterprise_facts_as_of(as_of=as_of, enterprise_ids=enterprise_ids)
    table = facts_table(run_id)
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        if connection.vendor == "postgresql":
            # Typed columns: PostgreSQL types a column that is NULL in every row (the
            # registry leaves transaction columns unknown) as text.
            cols = ", ".join(
                f'CAST(facts."{name}" AS {PG_TYPES[typ]}) AS "{name}"'
                for name, typ in COLUMN_TYPES.items()
            )
            # Without parallel workers: each one built the same per-enterprise aggregates
            # of the registry again for its share of the rows (1.4 CPU-seconds instead of
            # 0.8 at 100,000 enterprises), for no shorter a wall time on two cores.
            with transaction.atomic():
                cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                cur.execute(f"CREATE TABLE {table} AS SELECT {cols} FROM ({sql}) facts")
                # Inside a caller's transaction this block is a savepoint, and SET LOCAL
                # would hold for the rest of it (the results inserts included).
                cur.execute("SET LOCAL max_parallel_workers_per_gather TO DEFAULT")
        else:
            cur.execute(f"CREATE TABLE {table} AS SELECT * FROM ({sql}) facts")
        if index:
            index_facts(run_id)
        cur.execute(f"SELECT count(*) FROM {table}")
        return int(cur.fetchone()[0])


def index_facts(run_id: int) -> None:
    """Index a run's facts table by credit code: one enterprise's row for its result page."""
    table = facts_table(run_id)
    with connection.cursor() as cur:
        cur.execute(f"CREATE INDEX IF NOT EXISTS {table}_entity ON {table} (entity_id)")


def drop_facts(run_id: int) -> None:
    """Drop a run's facts table: only when the run itself is deleted."""
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {facts_table(run_id)}")


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f") if value else "0"
    return value


def facts_hash(run_id: int) -> str:
    """SHA-256 of the run's facts rows, in credit-code order, as canonical JSON lines.

    Values are typed first (SQLite returns decimals as REAL), so the same registry
    hashes the same on every run of the same database."""
    if connection.vendor == "postgresql":
        return _facts_hash_postgres(run_id)
    h = hashlib.sha256()
    pg = False
    with connection.cursor() as cur:
        cur.execute(f"SELECT * FROM {facts_table(run_id)} ORDER BY entity_id")
        names = [c[0] for c in cur.description]
        if names != list(COLUMNS):
            raise KechuangError("facts columns differ from the facts row definition")
        while True:
            rows = cur.fetchmany(5000)
            if not rows:
                break
            for values in rows:
                typed = values if pg else convert_row(values).values()
                line = json.dumps(
                    [_canonical(v) for v in typed], ensure_ascii=False, separators=(",", ":")
                )
                h.update(line.encode())
                h.update(b"\n")
    return h.hexdigest()


def _facts_hash_postgres(run_id: int) -> str:
    """On PostgreSQL the hash is computed where the rows are: SHA-256 over each row's
    MD5 (of PostgreSQL's text form of the typed row), in credit-code order. Fetching
    100,000 wide rows into Python only to hash them cost seconds. ``pg:`` marks the
    method: it is comparable between runs on PostgreSQL, not with SQLite's."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT encode(sha256(convert_to(string_agg(md5(f::text), '' ORDER BY f.entity_id), "
            f"'UTF8')), 'hex') FROM {facts_table(run_id)} f"
        )
        digest = cur.fetchone()[0] or hashlib.sha256(b"").hexdigest()
    return f"pg:{digest}"


#: Fact types given as exact decimal strings in a stored row's JSON.
DECIMAL_TYPES = ("money", "number", "share")


def facts_json(row: dict[str, Any]) -> dict[str, Any]:
    """A typed facts row as JSON: decimals as exact strings (their stored scale), dates
    as the row's yyyymmdd integers, flags as booleans, text as is."""
    return {k: format(v, "f") if isinstance(v, Decimal) else v for k, v in row.items()}


def _typed(values: Iterable[Any]) -> dict[str, Any]:
    if connection.vendor == "postgresql":
        # psycopg returns Decimal at the column's scale, bool and int: what the SQL read.
        return dict(zip(COLUMNS, values, strict=True))
    return convert_row(values)


def facts_kept(run_id: int) -> bool:
    """Whether the run's facts table is there (runs before facts were kept: no).

    One catalog lookup by name: a results page asks once per result, and listing every
    table (one per run) each time cost more than reading the row."""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", [facts_table(run_id)])
            return bool(cur.fetchone()[0])
        cur.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = %s",
            [facts_table(run_id)],
        )
        return bool(cur.fetchone()[0])


def stored_facts_row(run_id: int, credit_code: str) -> dict[str, Any] | None:
    """The flat facts row the run read for this enterprise, typed as the registry's
    (Decimal money, int dates, bool flags): the input of ``evaluate_flat``. None when
    the run kept no facts or did not read this enterprise."""
    if not facts_kept(run_id):
        return None
    with connection.cursor() as cur:
        cur.execute(f"SELECT * FROM {facts_table(run_id)} WHERE entity_id = %s", [credit_code])
        values = cur.fetchone()
    return _typed(values) if values is not None else None


def iter_stored_facts(run_id: int, batch_size: int = 5000) -> Iterable[dict[str, Any]]:
    """Every facts row the run read, in credit-code order, typed."""
    if not facts_kept(run_id):
        return
    with connection.cursor() as cur:
        cur.execute(f"SELECT * FROM {facts_table(run_id)} ORDER BY entity_id")
        while True:
            rows = cur.fetchmany(batch_size)
            if not rows:
                return
            for values in rows:
                yield _typed(values)


def compile_for_run(
    policy: Policy, as_of: dt.date, run_id: int, part: tuple[int, int] | None = None
) -> CompiledPolicy:
    """The policy's query over the run's facts, or over one part of them.

    ``part=(i, n)`` reads only the rows of slice i of n (by a hash of the credit code), so
    that one long policy can be inserted on several connections at once.
    """
    table = facts_table(run_id)
    if part is not None:
        table = f"(SELECT * FROM {table} WHERE {slice_test('entity_id', part)}) part_facts"
    # The compiler keeps PostgreSQL from inlining its layers into each other (the plan
    # would grow until the planner ran out of memory) while rows still stream.
    return compile_sql(policy, as_of, dialect(), table=table)


def slice_test(column: str, part: tuple[int, int]) -> str:
    """SQL true for the rows of slice ``part[0]`` of ``part[1]`` (PostgreSQL)."""
    i, n = int(part[0]), int(part[1])
    return f"mod(abs(hashtext({column})::bigint), {n}) = {i}"


def insert_results(
    run_id: int, policy: Policy, compiled: CompiledPolicy, benefit: tuple[str, ...] | None
) -> int:
    """``INSERT … SELECT`` the compiled policy's rows as the run's results; returns the count."""
    from kechuang.calculator.models_runs import MianshenResult
    from kechuang.registry.models import Enterprise

    qn = connection.ops.quote_name
    results = MianshenResult._meta.db_table
    enterprises = Enterprise._meta.db_table
    # NUMERIC: PostgreSQL types a bare NULL as text, which a decimal column refuses.
    benefit_sql = (
        f'CAST(q."{"__".join(benefit)}" AS NUMERIC)' if benefit else "CAST(NULL AS NUMERIC)"
    )
    # The outputs are not stored: only what lists, review, stacking and the diff read
    # (verdict, benefit, missing facts). The rest is what ``evaluate_flat`` gives again
    # from the facts row the run kept, with the parameter values it recorded
    # (``recomputed_outputs``); the query then computes no column it does not store
    # (PostgreSQL drops unused subquery outputs), and all seven policies write 700,000
    # rows about 1.7 CPU-seconds faster at 100,000 enterprises.
    outputs = "CAST('{}' AS JSONB)" if connection.vendor == "postgresql" else "'{}'"
    if "'" in policy.id:
        raise KechuangError(f"bad policy id {policy.id!r}")
    cols = [
        "run_id",
        "enterprise_id",
        "credit_code",
        "policy_id",
        "verdict",
        "benefit",
        "payable",
        "stacking_note",
        "missing_fields",
        "outputs",
        "excluded",
        "exclusion_reason",
    ]
    sql = (
        f"INSERT INTO {qn(results)} ({', '.join(qn(c) for c in cols)}) "
        f"SELECT {int(run_id)}, e.id, q.entity_id, '{policy.id}', q.verdict, {benefit_sql}, "
        f"CASE WHEN q.verdict = 'eligible' AND {benefit_sql} > 0 THEN {benefit_sql} END, "
        f"'', COALESCE(q.missing_fields, ''), {outputs}, FALSE, '' "
        f"FROM ({compiled.sql}) q JOIN {qn(enterprises)} e ON e.credit_code = q.entity_id"
    )
    with connection.cursor() as cur:
        cur.execute(sql)
        return cur.rowcount


def delete_results(
    run_id: int, policy_id: str | None = None, part: tuple[int, int] | None = None
) -> int:
    """Delete a run's stored results (one policy's, or all) with one statement.

    Only for a run that has made no offer (an unconfirmed run): the ORM's cascade
    collector would load every one of 100,000s of rows to check for offers first."""
    from kechuang.calculator.models_runs import MianshenOffer, MianshenResult

    if MianshenOffer.objects.filter(run_id=run_id).exists():
        raise KechuangError("a confirmed run's results are kept / 已确认的比对结果不能删除")
    qn = connection.ops.quote_name
    sql = f"DELETE FROM {qn(MianshenResult._meta.db_table)} WHERE run_id = %s"
    params: list[Any] = [int(run_id)]
    if policy_id is not None:
        sql += " AND policy_id = %s"
        params.append(policy_id)
    if part is not None:
        sql += f" AND {slice_test('credit_code', part)}"
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.rowcount


def decode_outputs(columns: list, outputs: dict[str, Any] | list[Any]) -> dict[str, Any]:
    """A stored result's outputs as the decision dict ``to_dict()`` shapes (no trace).

    ``outputs`` is an object keyed by column (SQLite) or an array in the order of
    ``columns`` (PostgreSQL)."""
    if isinstance(outputs, list):
        if len(outputs) != len(columns):
            raise KechuangError("stored outputs do not match the run's column map")
        outputs = {c: v for (c, _, _), v in zip(columns, outputs, strict=True)}
    compiled = SimpleNamespace(columns={c: (tuple(path), typ) for c, path, typ in columns})
    return decode(compiled, outputs)  # type: ignore[arg-type]


_FEN = Decimal("0.01")


#: ``recomputed_outputs``' default: explain the result here.
EXPLAIN = object()


def recomputed_outputs(run: Any, result: Any, decision: Any = EXPLAIN) -> dict[str, Any] | None:
    """A result's outputs computed again from what the run recorded: the facts row it
    kept, the parameter values it used (a reform run: its overrides), its as-of date.

    The shape is the one ``decode_outputs`` gives (``to_dict()`` without trace and policy).
    None when the run kept no facts. Refused when the outputs do not reproduce the
    verdict, benefit and missing facts the run stored: a decision that cannot be
    explained from its recorded inputs must not be shown with another's explanation."""
    from kechuang.calculator.reforms import explain_result

    if decision is EXPLAIN:
        decision = explain_result(run, result)
    if decision is None:
        return None
    outputs = decision.to_dict()
    outputs.pop("trace", None)
    outputs.pop("policy", None)
    benefit = (getattr(run, "benefit_outputs", None) or {}).get(result.policy_id)
    amount = outputs.get(benefit[0]) if benefit else None
    stored = (
        result.verdict,
        [f for f in result.missing_fields.split(",") if f],
        result.benefit,
    )
    again = (
        outputs.get("verdict"),
        list(outputs.get("missing_fields") or []),
        # At the stored column's scale, rounded as PostgreSQL's NUMERIC cast rounds.
        None if amount is None else Decimal(str(amount)).quantize(_FEN, ROUND_HALF_UP),
    )
    if stored != again:
        raise KechuangError(
            f"结果不能由比对记录的输入复现 / result {result.pk} ({result.credit_code}, "
            f"{result.policy_id}) does not reproduce from the run's recorded inputs: "
            f"stored {stored}, recomputed {again}"
        )
    return outputs


def column_spec(compiled: CompiledPolicy) -> list:
    return [[c, list(path), typ] for c, (path, typ) in compiled.columns.items()]


def policy_as_recorded(run: Any, policy_id: str, policy: Policy | None = None) -> Policy:
    """``policy`` (default: the law in force) with the parameter values ``run`` recorded.

    A run's explanation must give what the run computed, even after an admin has
    published a value in force on the run's date since (or withdrawn one). The run
    kept each parameter's entry in force on its date (the whole timeline for one
    chosen per row), and that is what is evaluated again."""
    from kechuang.calculator import law

    if policy is None:
        # Kept on the run object (one request, one page of results): looking up the law
        # in force and rebuilding the policy for every result cost more than evaluating
        # it. What it holds is the run's recorded parameter values, which never change.
        cache = run.__dict__.setdefault("_policies_as_recorded", {})
        if policy_id not in cache:
            cache[policy_id] = policy_as_recorded(run, policy_id, law.policy_in_force(policy_id))
        return cache[policy_id]
    file_hash = (getattr(run, "policy_files", None) or {}).get(policy_id)
    if file_hash and file_hash != get_policy(policy_id).sha256:
        # Today's file would explain the stored decision with other rules: refuse.
        raise KechuangError(
            f"政策文件在比对后已修改，无法用现行文件复现 / policy file {policy_id} changed "
            f"since run {run.pk} (sha256 {file_hash[:12]}… then, "
            f"{get_policy(policy_id).sha256[:12]}… now): its results keep their stored "
            "verdict, benefit and missing facts, but cannot be explained again"
        )
    recorded = (getattr(run, "parameters", None) or {}).get(policy_id) or {}
    params = dict(policy.parameters)
    for name, entries in recorded.items():
        if name not in params or not isinstance(entries, list):
            continue
        params[name] = replace(
            params[name],
            entries=tuple(
                TimelineEntry(
                    # (no "since": in force at any earlier date)
                    dt.date.fromisoformat(e["since"]) if e.get("since") else OPEN_START,
                    dt.date.fromisoformat(e["until"]) if e.get("until") else None,
                    None if e.get("value") is None else Fraction(Decimal(e["value"])),
                    e.get("article", ""),
                    None,
                )
                for e in entries
            ),
        )
    return replace(policy, parameters=params) if recorded else policy


def resolve_policy(policy_id: str, overrides: dict[str, str] | None, as_of: dt.date) -> Policy:
    """The law in force (the file with its published values), with a reform's overrides."""
    from kechuang.calculator import law

    return policy_with_overrides(law.policy_in_force(policy_id), overrides or {}, as_of)
