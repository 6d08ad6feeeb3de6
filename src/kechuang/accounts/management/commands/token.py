"""`kechuang token create USER [--name NAME]` · `token list [USER]` · `token revoke PREFIX`.

The clear token is printed once, at creation; only its hash is stored.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from kechuang.accounts import tokens
from kechuang.accounts.models import ApiToken


class Command(BaseCommand):
    help = "Issue, list and revoke REST API tokens."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="issue a token for USER and print it once")
        create.add_argument("username")
        create.add_argument("--name", default="", help="a label, e.g. the client's name")
        listing = sub.add_parser("list", help="list tokens (prefix, user, state)")
        listing.add_argument("username", nargs="?")
        revoke = sub.add_parser("revoke", help="revoke the token with this prefix")
        revoke.add_argument("prefix")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"handle_{action}")(**options)

    def handle_create(self, *, username: str, name: str, **_: object) -> None:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {username!r}")
        _token, clear = tokens.token_create(user=user, name=name)
        self.stdout.write(clear)

    def handle_list(self, *, username: str | None = None, **_: object) -> None:
        rows = ApiToken.objects.select_related("user").order_by("created_at")
        if username:
            rows = rows.filter(user__username=username)
        for t in rows:
            state = "revoked" if t.revoked_at else "active"
            used = t.last_used_at.isoformat() if t.last_used_at else "never"
            self.stdout.write(
                f"{t.prefix}…\t{t.user.username}\t{t.name}\t{state}\tlast used {used}"
            )

    def handle_revoke(self, *, prefix: str, **_: object) -> None:
        matches = list(
            ApiToken.objects.filter(prefix__startswith=prefix.rstrip("…"), revoked_at__isnull=True)
        )
        if len(matches) != 1:
            raise CommandError(
                f"{len(matches)} active tokens match {prefix!r}; give a longer prefix"
            )
        tokens.token_revoke(token=matches[0])
        self.stdout.write(f"revoked {matches[0].prefix}…")
