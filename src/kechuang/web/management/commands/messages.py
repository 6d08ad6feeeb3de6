"""`kechuang messages`: refresh the zh_Hans and en catalogs and compile them.

Django's makemessages only writes into a ``locale/`` folder under the current
directory or in LOCALE_PATHS. The project keeps one catalog, in
``kechuang/web/locale``, for every app's strings, so this command runs
makemessages from the package root with that folder as the only locale path.
Needs GNU gettext (``apt-get install -y gettext``); the compiled .mo files are
committed so that running the app never does.
"""

from __future__ import annotations

from contextlib import chdir
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.test.utils import override_settings

PACKAGE = Path(__file__).resolve().parents[3]
LOCALE = PACKAGE / "web" / "locale"
LANGUAGES = ["zh_Hans", "en"]


class Command(BaseCommand):
    help = "Update the zh_Hans and en translation catalogs and compile them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-compile", action="store_true", help="only update the .po files")

    def handle(self, *args, no_compile: bool = False, **options) -> None:
        with override_settings(LOCALE_PATHS=[str(LOCALE)]), chdir(PACKAGE):
            call_command(
                "makemessages",
                locale=LANGUAGES,
                # The rules engine has no Django and its own zh/en rendering.
                ignore_patterns=["rules/*", "*/tests/*", "tests/*"],
                no_obsolete=True,
                add_location="file",
                verbosity=options.get("verbosity", 1),
            )
        if not no_compile:
            with chdir(LOCALE.parent):
                call_command(
                    "compilemessages", locale=LANGUAGES, verbosity=options.get("verbosity", 1)
                )
