"""Which result fields a run writes: all of them, or those the caller names.

A whole-registry run that only needs verdicts (a first 免申即享 screening, say) should not pay
for ratios, score items and field lists nobody reads: the engines drop every expression no
written column needs, so naming fewer fields makes the run cheaper, not only the file smaller.
"""

from __future__ import annotations

from collections.abc import Sequence

from kechuang.rules.compile.to_sql import CompiledPolicy


def _owner(column: str, policy_ids: Sequence[str]) -> str:
    # Pack columns are named "<policy>__<field>"; the longest id wins should one id be
    # another's prefix.
    return max((p for p in policy_ids if column.startswith(p + "__")), key=len)


def output_columns(
    pack: CompiledPolicy, policy_ids: Sequence[str], fields: Sequence[str] | None
) -> list[str]:
    """The pack's result columns for ``fields``, in the pack's order (all when ``None``).

    A field is a result path as ``Decision.to_dict()`` has it: ``verdict``,
    ``missing_fields``, ``score`` or ``score.total_range``. It takes that field of every
    policy in the run that has it; ``hte.score.total_range`` takes one policy's, and
    ``hte`` all of hte's. A field no policy of the run has is refused with the fields
    there are, before any work.
    """
    columns = list(pack.columns)
    if fields is None:
        return columns
    wanted = [f.strip() for f in fields if f.strip()]
    if not wanted:
        raise ValueError("没有字段 no field given: --fields verdict,missing_fields")
    keep: set[str] = set()
    for field in wanted:
        head, _, rest = field.partition(".")
        only = head if head in policy_ids else None
        dotted = rest if only else field
        path = tuple(dotted.split(".")) if dotted else ()  # a policy id alone: every field
        hits = {
            c
            for c in columns
            if pack.columns[c][0][: len(path)] == path
            and (only is None or _owner(c, policy_ids) == only)
        }
        if not hits:
            known = sorted({pack.columns[c][0][0] for c in columns})
            raise ValueError(
                f"未知结果字段 unknown result field '{field}' for {', '.join(policy_ids)} "
                f"(known: {', '.join(known)})"
            )
        keep |= hits
    return [c for c in columns if c in keep]


def select_sql(pack: CompiledPolicy, columns: Sequence[str]) -> str:
    """The pack's query narrowed to ``entity_id`` and ``columns``."""
    if list(columns) == list(pack.columns):
        return pack.sql
    names = ", ".join('"' + c.replace('"', '""') + '"' for c in ("entity_id", *columns))
    return f"SELECT {names} FROM ({pack.sql}) AS pack"
