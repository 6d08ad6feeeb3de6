"""`kechuang vouchers_settlement BATCH_ID -o FILE.xlsx`: write a settlement batch's payment file."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from kechuang.vouchers import selectors
from kechuang.vouchers.models import SettlementBatch


class Command(BaseCommand):
    help = "Write the Excel payment file of a settlement batch."

    def add_arguments(self, parser) -> None:
        parser.add_argument("batch", type=int)
        parser.add_argument("-o", "--output", required=True, type=Path)

    def handle(self, *args, batch: int, output: Path, **opts) -> None:
        found = SettlementBatch.objects.filter(pk=batch).first()
        if found is None:
            raise CommandError(f"no settlement batch {batch}")
        output.write_bytes(selectors.settlement_workbook(found))
        self.stdout.write(
            f"batch {batch}: {found.total} yuan, {found.claims.count()} claims -> {output}"
        )
