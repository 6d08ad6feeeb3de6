"""In Debian's chromium: an enterprise user runs the self-check and reads the explanation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from kechuang.calculator.tests.selfcheck_data import AS_OF, put_alice_on_the_register
from kechuang.testing import ALICE_CODE, PASSWORD

pytestmark = pytest.mark.browser

@pytest.fixture
def tab(browser) -> Iterator[object]:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_an_enterprise_user_runs_the_selfcheck_and_reads_the_explanation(
    live_server, tab, alice_corp, ent_alice, bob_corp
):
    put_alice_on_the_register(alice_corp)
    base = live_server.url
    page = tab

    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "ent_alice")
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"{base}/")

    page.get_by_role("link", name="政策计算器").first.click()
    page.wait_for_url(re.compile(rf"/calculator/{ALICE_CODE}/"))
    page.fill("input[name=as_of]", AS_OF.isoformat())
    page.get_by_role("button", name="重新计算").click()
    page.wait_for_url(re.compile(r"as_of=2025-06-30"))

    summary = page.locator("[data-testid=summary]")
    assert summary.get_by_text("首次认定高新技术企业奖励（免申即享）").is_visible()
    reward = page.locator("[data-testid=policy-district_hte_first_reward]")
    assert reward.locator("[data-testid=verdict-district_hte_first_reward]").inner_text() == "符合"
    criterion = reward.locator("[data-testid=criterion-first_recognition_recent]")
    text = criterion.inner_text()
    assert "2024-11-15" in text  # the value read from the register
    assert "demo value" in text  # the parameter's article
    assert "满足" in text

    # The 高企 recognition needs figures Alice has not entered: each links to its page.
    hte = page.locator("[data-testid=policy-hte]")
    assert hte.locator("[data-testid=verdict-hte]").inner_text() in ("需补充数据", "不符合")
    missing = hte.locator("[data-testid=missing-hte] a").first
    href = missing.get_attribute("href")
    assert href.startswith(f"/registry/{ALICE_CODE}/years/")

    # Another enterprise's self-check is simply not there.
    response = page.goto(f"{base}/calculator/{bob_corp.credit_code}/")
    assert response.status == 404
