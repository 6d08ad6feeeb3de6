"""The database a platform benchmark runs on: the deterministic demo district, built once.

    from district import demo_district, open_database
    open_database(url, KECHUANG_DEBUG="True")   # before importing anything from Django
    demo_district(count)
"""

from __future__ import annotations

import os
import time


def open_database(url: str, **env: str) -> None:
    """Point Django at ``url`` (creating the PostgreSQL database if it is not there) and
    set Django up; ``env`` gives defaults for other settings read from the environment."""
    if url.startswith("postgres"):
        _create_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kechuang.settings")
    for name, value in env.items():
        os.environ.setdefault(name, value)
    import django

    django.setup()


def demo_district(count: int) -> None:
    """Migrate, and build the demo district of ``count`` enterprises unless the database
    already holds that many (a later run reuses it); then fresh planner statistics, as
    autovacuum would give."""
    from django.core.management import call_command
    from django.db import connection

    from kechuang.registry.demo import demo_build
    from kechuang.registry.models import Enterprise

    call_command("migrate", verbosity=0)
    if Enterprise.objects.count() != count:
        call_command("flush", interactive=False, verbosity=0)
        t = time.perf_counter()
        demo_build(count=count)
        print(f"built {count} enterprises in {time.perf_counter() - t:.0f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _create_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
