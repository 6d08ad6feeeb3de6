"""Services of the accounts app."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

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
) -> list[AuditLog]:
    """Append many entries at once (one bulk insert), for imports."""
    actor_ref = actor if actor is not None and actor.pk else None
    return AuditLog.objects.bulk_create(
        [
            AuditLog(
                actor=actor_ref,
                action=action,
                obj_type=obj_type,
                obj_id=str(obj_id),
                before=_jsonable(before),
                after=_jsonable(after),
                note=note,
            )
            for obj_id, before, after in changes
        ],
        batch_size=2000,
    )
