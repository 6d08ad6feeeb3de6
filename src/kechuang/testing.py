"""Shared pytest fixtures: a small district with people who have a story.

- ``staff_zhang`` works at the district S&T commission (科委) and may see and
  change every enterprise.
- ``ent_alice`` is the enterprise user of Alice's software company
  (``alice_corp``); ``ent_bob`` of Bob's IC design house (``bob_corp``). Bob must
  never see Alice's data, nor Alice Bob's.
- ``inst_lab`` is a user of a testing lab (服务机构); ``expert_wang`` reviews
  applications; ``auditor_li`` reads everything and the audit log;
  ``admin_root`` administers the platform.

The repository's root ``conftest.py`` imports these fixtures, so every test
module (registry, web, API, end-to-end) can ask for them by name.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection, connections
from stdnum.cn import uscc

from kechuang.accounts.models import Role, User
from kechuang.registry.models import Enterprise, FiscalYear

PASSWORD = "kechuang-test-pw-2024"


def credit_code(body: str) -> str:
    """A valid 统一社会信用代码 from its first 17 characters (check digit appended).

    >>> credit_code("91310107MA1G00001")
    '91310107MA1G00001U'
    """
    return body + uscc.calc_check_digit(body)


ALICE_CODE = credit_code("91310107MA1G00001")
BOB_CODE = credit_code("91310107MA1G00002")


def make_user(username: str, role: str, enterprise: Enterprise | None = None) -> User:
    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        role=role,
        enterprise=enterprise,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
    )
    return user


@pytest.fixture
def alice_corp(db) -> Enterprise:
    ent = Enterprise.objects.create(
        credit_code=ALICE_CODE,
        name="上海爱丽丝软件有限公司",
        registration_date=dt.date(2018, 3, 1),
        district="普陀区",
        street="长风新村街道",
        industry_code="6513",
        high_tech_field="电子信息",
        registered_in_mainland=True,
        resident_enterprise=True,
        ip_surveyed=True,
        compliance_checked=True,
    )
    FiscalYear.objects.create(
        enterprise=ent,
        year=2024,
        sales_revenue=Decimal("52900000.00"),
        rd_expense=Decimal("2200000.00"),
        staff_total=Decimal("120"),
        staff_sci_tech=Decimal("14"),
    )
    return ent


@pytest.fixture
def bob_corp(db) -> Enterprise:
    return Enterprise.objects.create(
        credit_code=BOB_CODE,
        name="上海鲍勃集成电路设计有限公司",
        registration_date=dt.date(2020, 7, 15),
        district="普陀区",
        street="桃浦镇",
        industry_code="6520",
        high_tech_field="电子信息",
    )


@pytest.fixture
def staff_zhang(db) -> User:
    return make_user("staff_zhang", Role.STAFF)


@pytest.fixture
def ent_alice(alice_corp) -> User:
    return make_user("ent_alice", Role.ENTERPRISE, alice_corp)


@pytest.fixture
def ent_bob(bob_corp) -> User:
    return make_user("ent_bob", Role.ENTERPRISE, bob_corp)


@pytest.fixture
def inst_lab(db) -> User:
    return make_user("inst_lab", Role.INSTITUTION)


@pytest.fixture
def expert_wang(db) -> User:
    return make_user("expert_wang", Role.EXPERT)


@pytest.fixture
def auditor_li(db) -> User:
    return make_user("auditor_li", Role.AUDITOR)


@pytest.fixture
def admin_root(db) -> User:
    return make_user("admin_root", Role.ADMIN)


# --------------------------------------------------------------------------- browser

CHROMIUM = os.environ.get("KECHUANG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # Without these, chromium tries to reach Google's hosts, and the closed
    # network answers with a storm of refused connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's chromium driven by Playwright, one per test run (never downloaded)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio loop in this thread; the tests still
    # create their data through the ORM here, which Django would otherwise refuse.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium (never download a browser)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def run_clients(calls) -> list[object]:
    """Run each call as one client; return each one's result or exception.

    On PostgreSQL each client is a thread with its own connection, all released
    together by a barrier; SQLite (one writer at a time) runs them one after another."""
    results: list[object] = [None] * len(calls)
    if connection.vendor != "postgresql":
        for i, call in enumerate(calls):
            try:
                results[i] = call()
            except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
                results[i] = exc
        return results
    barrier = threading.Barrier(len(calls))

    def client(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # noqa: BLE001
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
