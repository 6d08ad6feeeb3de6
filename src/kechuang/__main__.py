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
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        if os.environ["DJANGO_SETTINGS_MODULE"] == "kechuang.settings":
            import kechuang.settings  # noqa: F401  (a missing secret fails here, not mid-command)
    except ImproperlyConfigured as e:
        # One line naming the setting, not a traceback.
        print(f"配置错误 configuration error: {e}", file=sys.stderr)
        return 2
    execute_from_command_line(["kechuang", *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
