"""``kechuang serve``: serve the app (no migrations, no reloader).

Uses waitress, a production WSGI server, when it is installed, and Django's
threaded development server otherwise; static files come from whitenoise."""

from __future__ import annotations

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve kechuang over HTTP."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.getenv("KECHUANG_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.getenv("KECHUANG_PORT", "8000")))
        parser.add_argument("--threads", type=int, default=8)

    def handle(self, *args, host: str, port: int, threads: int, **options):
        self.stdout.write(f"kechuang serving on http://{host}:{port}/", ending="\n")
        self.stdout.flush()
        try:
            from waitress import serve
        except ImportError:
            call_command("runserver", f"{host}:{port}", use_reloader=False, skip_checks=False)
            return
        from kechuang.wsgi import application

        serve(application, host=host, port=port, threads=threads)
