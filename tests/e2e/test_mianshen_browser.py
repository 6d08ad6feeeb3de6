"""免申即享 in a real browser: staff start a run and watch it finish (the page polls
its progress), exclude one enterprise with a reason, confirm; the enterprise confirms
its wish and its bank account."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from kechuang.calculator.models_runs import BenefitRecord, MianshenRun
from kechuang.calculator.services_runs import mianshen_run_execute
from kechuang.registry.models import Certification
from kechuang.testing import PASSWORD

pytestmark = pytest.mark.browser

DISTRICT = ["district_hte_first_reward", "district_sh_sci_award_match", "district_little_giant_match"]


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"{base_url}/")


@pytest.fixture
def recognised(alice_corp, bob_corp):
    """Alice's and Bob's companies were first recognised as 高企 last year."""
    bob_corp.compliance_checked = True
    bob_corp.save()
    for i, ent in enumerate((alice_corp, bob_corp)):
        Certification.objects.create(
            enterprise=ent, kind="hte", number=f"GR20243100000{i}", valid_from=dt.date(2024, 11, 1),
            valid_to=dt.date(2027, 10, 31),
        )


def test_staff_start_watch_confirm_and_the_enterprise_accepts(
    live_server, page, settings, recognised, staff_zhang, ent_alice, alice_corp, bob_corp
):
    # No worker yet: the run waits in the queue, and the page polls its progress.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    base = live_server.url
    log_in(page, base, "staff_zhang")
    page.goto(f"{base}/calculator/runs/")
    for box in page.locator("input[name=policies]").all():
        box.set_checked(box.get_attribute("value") in DISTRICT)
    page.fill("input[name=as_of]", "2025-06-30")
    page.click("[data-testid=run-start]")
    page.wait_for_url(re.compile(r"/calculator/runs/\d+/$"))
    assert page.get_attribute("[data-testid=run-status]", "data-status") == "queued"

    # The worker picks the run up (its code path, in this process).
    run = MianshenRun.objects.get()
    mianshen_run_execute(run_id=run.pk)
    page.wait_for_selector("[data-testid=run-summary]")  # the poll saw it finish, reloaded
    assert page.get_attribute("[data-testid=run-status]", "data-status") == "done"

    bob_row = f"{bob_corp.credit_code}-district_hte_first_reward"
    page.fill(f"[data-testid=exclude-reason-{bob_row}]", "待核实研发费用")
    page.click(f"[data-testid=exclude-{bob_row}]")
    page.wait_for_selector(f"[data-testid=result-{bob_row}] .errorlist")

    page.click("[data-testid=run-confirm]")
    page.wait_for_selector("[data-testid=run-status][data-status=confirmed]")

    # Alice's company: the offer, one step to accept with the bank account.
    page.get_by_role("button", name="退出登录").click()
    log_in(page, base, "ent_alice")
    page.goto(f"{base}/calculator/offers/")
    page.fill("input[name=bank_name]", "中国工商银行上海普陀支行")
    page.fill("input[name=bank_account]", "6222021001001234567")
    page.click("[data-testid=offer-accept-district_hte_first_reward]")
    page.wait_for_selector("[data-testid=offer-status-district_hte_first_reward]:has-text('企业已确认')")
    assert BenefitRecord.objects.filter(enterprise=alice_corp).count() == 1
    assert not BenefitRecord.objects.filter(enterprise=bob_corp).exists()
