"""Read-side queries of the accounts app."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.utils import timezone

from kechuang.accounts.models import AuditLog

PAGE_SIZE = 50


def _day_start(day: dt.date) -> dt.datetime:
    # Filter dates are the commission's local days, not UTC days.
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def audit_log_list(*, filters: dict[str, Any]) -> QuerySet[AuditLog]:
    rows = AuditLog.objects.select_related("actor").order_by("-at", "-id")
    if filters.get("actor"):
        rows = rows.filter(actor__username=filters["actor"])
    if filters.get("action"):
        rows = rows.filter(action=filters["action"])
    if filters.get("obj_type"):
        rows = rows.filter(obj_type=filters["obj_type"])
    if filters.get("obj_id"):
        # Child records are logged as "<credit code>/<key>": a credit code finds
        # the enterprise and its fiscal years, IP and certifications.
        obj_id = filters["obj_id"].strip()
        rows = rows.filter(Q(obj_id=obj_id) | Q(obj_id__startswith=f"{obj_id}/"))
    if filters.get("since"):
        rows = rows.filter(at__gte=_day_start(filters["since"]))
    if filters.get("until"):
        rows = rows.filter(at__lt=_day_start(filters["until"] + dt.timedelta(days=1)))
    return rows


def audit_log_page(*, filters: dict[str, Any], page: Any) -> Page:
    return Paginator(audit_log_list(filters=filters), PAGE_SIZE).get_page(page)


def audit_log_for_objects(*, objects: list[tuple[str, str]], limit: int = 200) -> list[AuditLog]:
    """The latest entries about any of ``objects`` ((obj_type, obj_id) pairs), newest first."""
    if not objects:
        return []
    match = Q()
    for obj_type, obj_id in objects:
        match |= Q(obj_type=obj_type, obj_id=str(obj_id))
    return list(
        AuditLog.objects.select_related("actor").filter(match).order_by("-at", "-id")[:limit]
    )
