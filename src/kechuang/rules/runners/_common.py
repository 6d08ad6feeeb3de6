"""Helpers shared by the runners: input order, decoding of result rows, and the
output file of a batch run."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kechuang.rules.compile.to_sql import CompiledPolicy
from kechuang.rules.facts import typed
from kechuang.rules.runners.arrow import decode


def numbered(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``entity_id`` replaced by their position.

    SQL does not promise to keep input order through the compiled CTEs, and the outputs
    do not include ``entity_id``; numbering the rows lets each runner return results in
    input order even when ids repeat or are missing.
    """
    return [{**typed(r), "entity_id": str(i)} for i, r in enumerate(rows)]


def decode_ordered(
    compiled: CompiledPolicy, names: Sequence[str], records: Iterable[Sequence[Any]]
) -> list[dict[str, Any]]:
    """Decode result rows of a query over :func:`numbered` rows, back in input order."""
    pos = list(names).index("entity_id")
    ordered = sorted(records, key=lambda r: int(r[pos]))
    return [decode(compiled, dict(zip(names, r, strict=True))) for r in ordered]


def check_run(policy_ids: Sequence[str], input_path: str | Path, out_path: str | Path) -> None:
    """Refuse a batch run that would name a policy twice, or write over its own input."""
    twice = sorted({p for p in policy_ids if list(policy_ids).count(p) > 1})
    if twice:
        raise ValueError(f"政策重复 / a policy is named twice: {', '.join(twice)}")
    source, out = Path(input_path), Path(out_path)
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise ValueError(
            f"结果文件应为 .parquet / the results are written as Parquet: name --out *.parquet "
            f"(not {out.name})"
        )
    if source.exists() and out.exists() and source.resolve() == out.resolve():
        raise ValueError(
            "--out 与 --input 是同一文件 / --out is the input file: the results would replace "
            "the facts"
        )


@contextmanager
def staged_output(out_path: str | Path) -> Iterator[Path]:
    """A file beside ``out_path`` to write the results to; it replaces ``out_path`` only
    when the block ends without an error, so a failed or refused run leaves the results
    of the last good run where they were."""
    out = Path(out_path)
    staged = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        yield staged
        os.replace(staged, out)
    finally:
        staged.unlink(missing_ok=True)
