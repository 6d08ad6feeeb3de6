"""``kechuang import FILE``: import a registry workbook or CSV, all or nothing."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from kechuang.accounts.models import User
from kechuang.registry.imports import error_report_workbook
from kechuang.registry.services import registry_import


class Command(BaseCommand):
    help = "Import enterprises, fiscal years, IP and certifications (.xlsx or .csv)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--sheet", help="entity of a CSV file (enterprises, fiscal_years, ip, certifications)"
        )
        parser.add_argument("--actor", help="username recorded in the audit log (default: system)")
        parser.add_argument("--report", type=Path, help="also write the error report to this .xlsx")

    def handle(self, *args, file: Path, sheet, actor, report, **options):
        if not file.exists():
            raise CommandError(f"no such file: {file}")
        user = None
        if actor:
            user = User.objects.filter(username=actor).first()
            if user is None:
                raise CommandError(f"no such user: {actor}")
        with tqdm(unit="row", desc="检查 checking", disable=None) as bar:
            result = registry_import(
                file=file, filename=file.name, actor=user, progress=bar.update, sheet=sheet
            )
        if not result.ok:
            self.stderr.write(
                f"文件被拒绝，未写入任何数据 / file rejected, nothing written: {file}"
            )
            for e in result.errors:
                self.stderr.write(
                    f"  {e.sheet} 第{e.row}行 row {e.row} [{e.column}] {e.value!r}: {e.reason}"
                )
            if report:
                report.write_bytes(error_report_workbook(result.errors))
                self.stderr.write(f"error report: {report}")
            raise CommandError(f"{len(result.errors)} problem(s)")
        for entity, c in result.counts.items():
            self.stdout.write(
                f"{entity}: {c['created']} created, {c['updated']} updated, "
                f"{c['unchanged']} unchanged"
            )
