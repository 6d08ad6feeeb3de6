"""The registry in a real browser: staff search and open an enterprise, switch to
English, log out; an enterprise user who types another enterprise's URL is refused."""

from __future__ import annotations

import re

import pytest

from kechuang.registry.models import Enterprise
from kechuang.testing import BOB_CODE, PASSWORD, credit_code

pytestmark = pytest.mark.browser


@pytest.fixture
def district(alice_corp, bob_corp) -> None:
    # Enough neighbours that finding Alice's company takes a search.
    Enterprise.objects.bulk_create(
        Enterprise(
            credit_code=credit_code(f"91310107MA1G9{i:04d}"),
            name=f"上海测试科技有限公司{i:02d}",
            street="长风新村街道",
            industry_code="6513",
        )
        for i in range(40)
    )


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def test_staff_search_open_switch_language_and_an_intruder_is_refused(
    live_server, page, district, staff_zhang, ent_alice
):
    base = live_server.url

    log_in(page, base, "staff_zhang")
    page.get_by_role("link", name="企业库").first.click()
    page.fill("input[name=q]", "爱丽丝")
    page.get_by_role("button", name="检索").click()
    page.wait_for_url(re.compile(r"q="))
    assert page.locator("tbody tr").count() == 1
    page.get_by_role("link", name="上海爱丽丝软件有限公司").click()
    page.wait_for_selector("h1:has-text('上海爱丽丝软件有限公司')")
    assert page.get_by_role("heading", name="年度数据").is_visible()

    page.click("[data-testid=lang-en]")
    page.wait_for_selector("h2:has-text('Fiscal years')")
    assert page.get_by_role("heading", name="Change history").is_visible()
    assert page.locator("html").get_attribute("lang") == "en"

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/accounts/login/"))

    log_in(page, base, "ent_alice")
    response = page.goto(f"{base}/registry/{BOB_CODE}/")
    assert response.status == 404
    assert "Not found" in page.content()
    assert "鲍勃" not in page.content()


def test_staff_upload_a_bad_file_and_see_every_bad_row_without_anything_written(
    live_server, page, staff_zhang, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    good = credit_code("91310107MA1G77777")
    bad_file = tmp_path / "enterprises.csv"
    bad_file.write_text(
        f"统一社会信用代码,企业名称\n{good},好企业\n91310107MA1G0000XX,坏代码企业\n",
        encoding="utf-8",
    )
    log_in(page, live_server.url, "staff_zhang")
    page.goto(f"{live_server.url}/registry/import/")
    page.set_input_files("input[type=file]", str(bad_file))
    page.get_by_role("button", name="上传并导入").click()
    page.wait_for_selector("[data-testid=import-rejected]")
    # The script swapped the result in: still the import page, no navigation.
    assert page.url.endswith("/registry/import/")
    assert page.locator("#import-result td", has_text="91310107MA1G0000XX").count() == 1
    with page.expect_download() as download:
        page.get_by_role("link", name="下载错误报告（Excel）").click()
    assert download.value.suggested_filename == "import-errors.xlsx"
    assert not Enterprise.objects.filter(credit_code=good).exists()
