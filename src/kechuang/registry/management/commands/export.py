"""``kechuang export FILE``: the registry (or a filtered part) as an .xlsx."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand
from tqdm import tqdm

from kechuang.registry.exports import registry_export


class Command(BaseCommand):
    help = "Export the registry to an .xlsx workbook that imports back."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--search", default="", help="name or credit code contains")
        parser.add_argument("--street", default="")
        parser.add_argument("--industry", default="", help="industry code prefix, e.g. 65")
        parser.add_argument("--certification", default="", help="hte, tsme, little_giant …")

    def handle(self, *args, file: Path, search, street, industry, certification, **options):
        filters = {
            "search": search,
            "street": street,
            "industry_code": industry,
            "certification": certification,
        }
        with tqdm(unit="row", disable=None) as bar:
            counts = registry_export(out=file, filters=filters, progress=bar.update)
        self.stdout.write(f"{file}: " + ", ".join(f"{n} {entity}" for entity, n in counts.items()))
