"""Helpers shared by the runners: input order and decoding of result rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
