"""API tokens: issued per user, shown once, stored only as a SHA-256 hash.

The token is 32 random bytes, so a fast hash is enough (no password stretching
needed: nobody can brute-force 256 bits), and lookup by hash keeps the check a
single indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from kechuang.accounts.models import ApiToken, User
from kechuang.accounts.services import audit_record

PREFIX = "kc_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_create(*, user: User, name: str = "", actor: User | None = None) -> tuple[ApiToken, str]:
    """Issue a token for ``user``; returns the row and the clear token (shown once).

    ``actor`` is who issued it (None: the command line). Issuing and revoking are
    audited: a token reads and writes registry data as its user."""
    clear = PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, prefix=clear[: len(PREFIX) + 6], key_hash=hash_token(clear)
        )
        audit_record(
            actor=actor,
            action="api_token_create",
            obj_type="api_token",
            obj_id=token.prefix,
            before=None,
            after={"user": user.username, "name": name},
        )
    return token, clear


def token_revoke(*, token: ApiToken, actor: User | None = None) -> None:
    if token.revoked_at is not None:
        return
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="api_token_revoke",
            obj_type="api_token",
            obj_id=token.prefix,
            before={"revoked_at": None},
            after={"revoked_at": token.revoked_at},
        )


def user_for_token(clear: str) -> Any:
    """The active user behind a clear token, or None (unknown, revoked, user inactive)."""
    if not clear or not clear.startswith(PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user", "user__enterprise")
        .filter(key_hash=hash_token(clear), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    # Coarse last-used stamp (once a minute) so a busy client does not write on every call.
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
