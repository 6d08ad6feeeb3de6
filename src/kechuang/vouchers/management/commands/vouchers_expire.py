"""`kechuang vouchers_expire [--program ID] [--today YYYY-MM-DD]`: return the unused
quota of every program whose validity has ended (run daily; safe to repeat)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from kechuang.errors import KechuangError
from kechuang.vouchers import services
from kechuang.vouchers.models import Program


class Command(BaseCommand):
    help = "Return unused voucher quota to the program budget after the validity period."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--program", type=int, help="only this program")
        parser.add_argument("--today", type=dt.date.fromisoformat, help="as of this date")

    def handle(
        self, *args, program: int | None = None, today: dt.date | None = None, **opts
    ) -> None:
        today = today or timezone.localdate()
        programs = Program.objects.filter(valid_until__lt=today)
        if program is not None:
            programs = Program.objects.filter(pk=program)
        failed = []
        for p in programs.order_by("pk"):
            try:
                posted = services.quota_expire(program=p, today=today)
            except KechuangError as exc:
                # One program refused must not keep the others' quota from expiring.
                failed.append(f"{p}: {exc.message}")
                continue
            total = sum((t.entries.first().amount for t in posted), start=0)
            self.stdout.write(f"{p}: {len(posted)} accounts, {total} yuan returned")
        if failed:
            raise CommandError("; ".join(failed))
