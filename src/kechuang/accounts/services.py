"""Services of the accounts app."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from django.db import connection
from django.utils import timezone

from kechuang.accounts.models import AuditLog, User


def _jsonable(value: Any) -> Any:
    # Money stays exact in the log: Decimal as its text, never a float.
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal | dt.datetime | dt.date):
        return _jsonable(value)
    raise TypeError(f"cannot record {type(value).__name__} in the audit log")


def audit_record(
    *,
    actor: User | None,
    action: str,
    obj_type: str,
    obj_id: Any,
    before: dict | None,
    after: dict | None,
    note: str = "",
) -> AuditLog:
    """Append one entry to the audit log (actor None = the system).

    ``before`` is None for a creation, ``after`` None for a deletion."""
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        obj_type=obj_type,
        obj_id=str(obj_id),
        before=_jsonable(before),
        after=_jsonable(after),
        note=note,
    )


def audit_entries(
    *,
    actor: User | None,
    action: str,
    obj_type: str,
    changes: list[tuple[Any, dict | None, dict | None]],
    note: str = "",
) -> int:
    """Append many entries at once, for imports; returns how many.

    A 100,000-enterprise import logs hundreds of thousands of entries; this
    inserts them with executemany instead of building a model per entry."""
    if not changes:
        return 0
    actor_id = actor.pk if actor is not None and actor.pk else None
    now = timezone.now()
    meta = AuditLog._meta
    qn = connection.ops.quote_name
    columns = ["actor_id", "at", "action", "obj_type", "obj_id", "before", "after", "note"]
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    at = meta.get_field("at").get_db_prep_value(now, connection)

    def dump(value: dict | None) -> str | None:
        # json's C encoder calls _json_default only for Decimal and dates.
        return (
            None if value is None else json.dumps(value, ensure_ascii=False, default=_json_default)
        )

    with connection.cursor() as cursor:
        for i in range(0, len(changes), 5000):
            cursor.executemany(
                sql,
                [
                    (actor_id, at, action, obj_type, str(obj_id), dump(b), dump(a), note)
                    for obj_id, b, a in changes[i : i + 5000]
                ],
            )
    return len(changes)
