"""What a batch run's output file records about how it was made.

A results file is read long after the run, often by someone who did not make it: an auditor
asking why an enterprise was screened out must be able to tell which policy files, as of
which date, on which engine, decided it, and to rerun exactly that. Parquet key-value
metadata travels with the file, so the answer cannot be separated from the results.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import kechuang
from kechuang.rules.policy import Policy


def run_metadata(
    policies: Sequence[Policy],
    as_of: dt.date,
    engine: str,
    input_path: str | Path,
    fields: Sequence[str] | None,
) -> dict[str, str]:
    """Key-value metadata for a ``rules run`` output: keys ``kechuang.*``, JSON values.

    The input is named with its size, not hashed: hashing would cost a second read of a
    registry export, and the export's own name and size identify it in the platform.
    """
    source = Path(input_path)
    values = {
        "as_of": as_of.isoformat(),
        "policies": [{"id": p.id, "sha256": p.sha256, "file": p.path.name} for p in policies],
        "fields": None if fields is None else [f.strip() for f in fields if f.strip()],
        "engine": engine,
        "version": kechuang.__version__,
        "input": {"name": source.name, "bytes": source.stat().st_size},
        "made_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return {f"kechuang.{k}": json.dumps(v, ensure_ascii=False) for k, v in values.items()}


def duckdb_option(metadata: dict[str, str]) -> str:
    """The metadata as DuckDB's ``COPY … (KV_METADATA {...})`` option."""

    def literal(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    pairs = ", ".join(f"{literal(k)}: {literal(v)}" for k, v in metadata.items())
    return f"KV_METADATA {{{pairs}}}"
