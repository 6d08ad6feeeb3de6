"""``kechuang demo``: build the demo district (once) and print the demo logins;
or, with ``--parquet``, write a large synthetic registry's facts rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from kechuang.registry import demo


class Command(BaseCommand):
    help = "Build the demo district (idempotent) and print its logins; or write Parquet facts."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=demo.DEFAULT_COUNT)
        parser.add_argument("--seed", type=int, default=demo.DEFAULT_SEED)
        parser.add_argument("--parquet", type=Path, help="write flat facts rows here instead")
        parser.add_argument("--as-of", type=dt.date.fromisoformat, help="as-of date (Parquet)")
        parser.add_argument("--no-logins", action="store_true", help="do not create/print logins")

    def handle(self, *args, count, seed, parquet, as_of, no_logins, **options):
        if parquet is not None:
            if as_of is None:
                raise CommandError("--parquet needs --as-of YYYY-MM-DD")
            with tqdm(total=count, unit="enterprise", disable=None) as bar:
                n = demo.demo_parquet(
                    out=parquet, count=count, as_of=as_of, seed=seed, progress=bar.update
                )
            self.stdout.write(f"wrote {n} facts rows as of {as_of} to {parquet}")
            return
        self.build(count=count, seed=seed)
        if not no_logins:
            self.print_logins(demo.demo_logins())

    def build(self, *, count: int, seed: int) -> None:
        if demo.demo_present(seed=seed):
            self.stdout.write("演示区已存在 / demo district already present: nothing to do")
            return
        with tqdm(total=count, unit="enterprise", disable=None) as bar:
            n = demo.demo_build(count=count, seed=seed, progress=bar.update)
        self.stdout.write(f"演示区已建立 / demo district built: {n} enterprises")

    def print_logins(self, logins: list[dict]) -> None:
        self.stdout.write("演示账号 / demo logins:")
        for login in logins:
            self.stdout.write(
                f"  {login['role']:<12} {login['username']:<14} {login['password']:<22} "
                f"{login['note']}"
            )
