"""``kechuang setup_admin``: create the admin account once and print its password.

The generated password is kept in the data folder so that a re-run prints the
same one. An existing admin's password is never changed."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from kechuang.accounts.models import Role, User


class Command(BaseCommand):
    help = "Create the admin account if absent and print its password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        password_file = settings.DATA_DIR / f"{username}-password.txt"
        user = User.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(
                username=username, password=password, email="", role=Role.ADMIN
            )
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password + "\n", encoding="utf-8")
            password_file.chmod(0o600)
            self.stdout.write(f"管理员 / admin: {username}  password: {password}  (created)")
            return
        stored = password_file.read_text(encoding="utf-8").strip() if password_file.exists() else ""
        if stored and user.check_password(stored):
            self.stdout.write(f"管理员 / admin: {username}  password: {stored}")
        else:
            self.stdout.write(
                f"管理员 / admin: {username} exists; its password was changed and is not shown "
                f"(reset it with: kechuang changepassword {username})"
            )
