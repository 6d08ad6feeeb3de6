"""``kechuang reforms``: publish a reform's parameter values as the law in force.

    kechuang reforms publications [--policy voucher]
    kechuang reforms publish REFORM_ID --parameters district_ratio --from 2026-01-01 \\
        --document "普科委〔2026〕1号" --article 第三条 --by ADMIN [--until 2026-12-31] [--reason …]
    kechuang reforms withdraw PUBLICATION_ID --reason … --by ADMIN

``--by`` names the admin who publishes (recorded and audited); anyone else is refused.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from kechuang.accounts.models import User
from kechuang.calculator import law, services_law
from kechuang.calculator.models_law import ParameterPublication
from kechuang.calculator.models_runs import Reform
from kechuang.errors import KechuangError


def _date(text: str | None, option: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option}: not a date (YYYY-MM-DD): {text!r}") from None


def _user(username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"--by: no user {username!r}")
    return user


class Command(BaseCommand):
    help = "Reforms: list, publish and withdraw published parameter values"

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        pubs = sub.add_parser("publications", help="list published parameter values")
        pubs.add_argument("--policy", default="")
        pub = sub.add_parser("publish", help="publish a reform's values as the law in force")
        pub.add_argument("reform_id", type=int)
        pub.add_argument("--parameters", required=True, help="comma-separated parameter names")
        pub.add_argument("--from", dest="effective_from", required=True, help="YYYY-MM-DD")
        pub.add_argument("--until", dest="effective_until", default="", help="YYYY-MM-DD")
        pub.add_argument("--document", required=True, help="文号, e.g. 普科委〔2026〕1号")
        pub.add_argument("--article", required=True, help="条款, e.g. 第三条")
        pub.add_argument("--reason", default="")
        pub.add_argument("--by", required=True, help="the admin's username")
        wd = sub.add_parser("withdraw", help="withdraw a publication not yet in effect")
        wd.add_argument("publication_id", type=int)
        wd.add_argument("--reason", required=True)
        wd.add_argument("--by", required=True, help="the admin's username")

    def handle(self, *args, action: str, **options) -> None:
        try:
            getattr(self, f"handle_{action}")(**options)
        except KechuangError as e:
            raise CommandError(e.message) from None
        except PermissionDenied as e:
            raise CommandError(f"refused: {e} / 仅管理员可发布") from None

    def handle_publications(self, *, policy: str, **options) -> None:
        for p in law.publications(policy_id=policy or None):
            state = " (withdrawn)" if p.withdrawn else ""
            until = f" until {p.effective_until}" if p.effective_until else ""
            self.stdout.write(
                f"#{p.pk} {p.policy_id}.{p.parameter} = {p.value.normalize()} from "
                f"{p.effective_from}{until} · {p.document_number} {p.article} · "
                f"{p.published_by.get_username()} {p.published_at:%Y-%m-%d}{state}"
            )

    def handle_publish(self, *, reform_id: int, parameters: str, **options) -> None:
        reform = Reform.objects.filter(pk=reform_id).first()
        if reform is None:
            raise CommandError(f"no reform #{reform_id}")
        published = services_law.parameter_publish(
            reform=reform,
            parameters=parameters.split(","),
            effective_from=_date(options["effective_from"], "--from"),
            effective_until=_date(options["effective_until"], "--until"),
            document_number=options["document"],
            article=options["article"],
            reason=options["reason"],
            actor=_user(options["by"]),
        )
        for p in published:
            self.stdout.write(
                f"published #{p.pk} {p.policy_id}.{p.parameter} = {p.value.normalize()} "
                f"from {p.effective_from} (was {p.previous_value or '—'})"
            )

    def handle_withdraw(self, *, publication_id: int, reason: str, by: str, **options) -> None:
        pub = ParameterPublication.objects.filter(pk=publication_id).first()
        if pub is None:
            raise CommandError(f"no publication #{publication_id}")
        services_law.parameter_publication_withdraw(publication=pub, reason=reason, actor=_user(by))
        self.stdout.write(f"withdrew #{pub.pk}")
