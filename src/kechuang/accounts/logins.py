"""Logins: each one, failed or not, and each logout recorded in the audit log; too many
failures lock the username for a while.

等保 (MLPS 2.0) asks a government system to handle failed logins and limit
illegal login attempts. The count lives in the audit log (not a per-process
cache), so every app server process sees the same failures, and auditors see
them too. A successful login ends the streak: only failures after the user's
``last_login`` count.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.utils import timezone

from kechuang.accounts.models import AuditLog, User
from kechuang.accounts.services import audit_record

MAX_FAILURES = 5
NAME_KEPT = 150  # a username's longest (the audit log's obj_id holds 200)
LOCK_WINDOW = dt.timedelta(minutes=15)
ACTION = "login_failed"


def _client_ip(request: Any) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a
    # trusted proxy sets it, and this app does not assume one.
    return (getattr(request, "META", None) or {}).get("REMOTE_ADDR", "")


def recent_failures(username: str) -> int:
    since = timezone.now() - LOCK_WINDOW
    last_login = User.objects.filter(username=username).values_list("last_login", flat=True).first()
    username = username[:NAME_KEPT]  # as recorded: a longer name must not escape the count
    if last_login and last_login > since:
        since = last_login
    return AuditLog.objects.filter(
        action=ACTION, obj_type="user", obj_id=username, at__gt=since
    ).count()


def login_locked(username: str) -> bool:
    """True when ``username`` has failed MAX_FAILURES times within LOCK_WINDOW.

    Asked for any name, registered or not, so the answer tells nobody which
    usernames exist."""
    return bool(username) and recent_failures(username) >= MAX_FAILURES


@receiver(user_login_failed)
def record_login_failure(
    sender: Any, credentials: dict, request: Any = None, **kwargs: Any
) -> None:
    username = (credentials.get("username") or "")[:NAME_KEPT]
    if not username:
        return
    audit_record(
        actor=None,
        action=ACTION,
        obj_type="user",
        obj_id=username,
        before=None,
        after=None,
        note=f"ip {_client_ip(request)}",
    )


@receiver(user_logged_in)
def record_login(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    # Who entered the system, when and from where: 等保 asks for it beside the failures.
    _record_session(user, request, "login")


@receiver(user_logged_out)
def record_logout(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    if user is not None:  # (None: a visitor who was not logged in)
        _record_session(user, request, "logout")


def _record_session(user: User, request: Any, action: str) -> None:
    audit_record(
        actor=user,
        action=action,
        obj_type="user",
        obj_id=user.get_username()[:NAME_KEPT],
        before=None,
        after=None,
        note=f"ip {_client_ip(request)}",
    )
