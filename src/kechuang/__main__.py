"""The `kechuang` console command: a thin dispatcher.

`kechuang rules …` goes to the Django-free rules engine CLI; everything else is a
Django management command (`kechuang migrate`, `kechuang serve`, `kechuang demo`, …).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "rules":
        from kechuang.rules.cli import main as rules_main

        return rules_main(args[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kechuang.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["kechuang", *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
