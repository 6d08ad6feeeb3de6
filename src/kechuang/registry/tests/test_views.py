"""Registry pages, tested with the requests an intruder would send."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kechuang.accounts.models import AuditLog
from kechuang.registry.models import Certification, Enterprise, FiscalYear, Incident, IPAsset
from kechuang.testing import ALICE_CODE, BOB_CODE, credit_code

NOWHERE = credit_code("91310107MA1G99999")  # valid checksum, registered by nobody


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    # Import error reports are files; keep them out of the data folder.
    settings.MEDIA_ROOT = tmp_path


def detail(code: str) -> str:
    return reverse("registry:enterprise_detail", args=[code])


def edit(code: str) -> str:
    return reverse("registry:enterprise_edit", args=[code])


def year_edit(code: str, year: int) -> str:
    return reverse("registry:fiscal_year_edit", args=[code, year])


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- list and search ------------------------------------------------------------


def test_staff_find_an_enterprise_by_name_or_by_credit_code(staff_zhang, alice_corp, bob_corp):
    client = logged_in(staff_zhang)
    by_name = client.get(reverse("registry:enterprise_list"), {"q": "爱丽丝"}).content.decode()
    assert alice_corp.name in by_name and bob_corp.name not in by_name
    by_code = client.get(reverse("registry:enterprise_list"), {"q": BOB_CODE[-6:].lower()})
    assert bob_corp.name in by_code.content.decode()
    assert alice_corp.name not in by_code.content.decode()


def test_staff_filter_by_street_industry_and_valid_certification(staff_zhang, alice_corp, bob_corp):
    today = timezone.localdate()
    Certification.objects.create(
        enterprise=bob_corp,
        kind="hte",
        number="GR2023310001",
        valid_from=today - dt.timedelta(days=30),
    )
    Certification.objects.create(
        enterprise=alice_corp,
        kind="hte",
        number="GR2019310001",
        valid_from=dt.date(2019, 1, 1),
        valid_to=dt.date(2021, 12, 31),
    )
    client = logged_in(staff_zhang)
    url = reverse("registry:enterprise_list")

    def names(**params) -> set[str]:
        page = client.get(url, params).content.decode()
        return {e.name for e in (alice_corp, bob_corp) if e.name in page}

    assert names(street="桃浦镇") == {bob_corp.name}
    assert names(industry="65") == {alice_corp.name, bob_corp.name}
    assert names(certification="hte") == {bob_corp.name}  # Alice's expired in 2021


def test_the_list_is_paginated(staff_zhang):
    Enterprise.objects.bulk_create(
        Enterprise(credit_code=credit_code(f"91310107MA1G8{i:04d}"), name=f"分页测试{i:02d}")
        for i in range(30)
    )
    client = logged_in(staff_zhang)
    first = client.get(reverse("registry:enterprise_list")).content.decode()
    second = client.get(reverse("registry:enterprise_list"), {"page": 2}).content.decode()
    assert "分页测试00" in first and "分页测试29" not in first
    assert "分页测试29" in second and "分页测试00" not in second


def test_an_enterprise_users_registry_is_their_own_enterprise(ent_alice, bob_corp):
    response = logged_in(ent_alice).get(reverse("registry:enterprise_list"), {"q": "鲍勃"})
    assert response.status_code == 302 and response["Location"] == detail(ALICE_CODE)


def test_institutions_and_experts_are_refused_the_registry(inst_lab, expert_wang, alice_corp):
    for user in (inst_lab, expert_wang):
        client = logged_in(user)
        assert client.get(reverse("registry:enterprise_list")).status_code == 403
        assert client.get(detail(ALICE_CODE)).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        reverse("registry:enterprise_list"),
        detail(ALICE_CODE),
        edit(ALICE_CODE),
        reverse("registry:import"),
        reverse("registry:export"),
    ],
)
def test_anonymous_visitors_are_sent_to_the_login_page(client, alice_corp, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# --- detail ---------------------------------------------------------------------


def test_the_detail_page_shows_years_ip_certifications_and_history(staff_zhang, alice_corp):
    IPAsset.objects.create(
        enterprise=alice_corp,
        ip_type="invention_patent",
        number="ZL202010000001.X",
        title="一种数据处理方法",
        status="valid",
        grant_date=dt.date(2022, 5, 1),
    )
    Certification.objects.create(
        enterprise=alice_corp,
        kind="tsme",
        number="202331010700000123",
        valid_from=dt.date(2023, 5, 1),
    )
    Incident.objects.create(
        enterprise=alice_corp,
        kind="major_quality",
        occurred_on=dt.date(2025, 3, 2),
        description="召回",
    )
    client = logged_in(staff_zhang)
    response = client.post(edit(ALICE_CODE), {**_staff_form(alice_corp), "contact_name": "赵经理"})
    assert response.status_code == 302
    page = client.get(detail(ALICE_CODE)).content.decode()
    for text in (
        "2024",
        "52,900,000.00",
        "ZL202010000001.X",
        "202331010700000123",
        "赵经理",
        "staff_zhang",
        "重大质量事故",
    ):
        assert text in page, text


# --- what an intruder tries -----------------------------------------------------


def test_another_enterprises_pages_are_not_found_exactly_like_codes_nobody_has(ent_bob, alice_corp):
    client = logged_in(ent_bob)
    for intruding, innocent in [
        (detail(ALICE_CODE), detail(NOWHERE)),
        (edit(ALICE_CODE), edit(NOWHERE)),
        (year_edit(ALICE_CODE, 2024), year_edit(NOWHERE, 2024)),
        (detail(ALICE_CODE.lower()), detail(NOWHERE.lower())),
    ]:
        a, b = client.get(intruding), client.get(innocent)
        assert a.status_code == b.status_code == 404
        assert a.content == b.content
        assert alice_corp.name.encode() not in a.content


@pytest.mark.parametrize("guess", ["1", "2", "0", "-1", str(10**6), "ZZZZ", "%27%20OR%201%3D1--"])
def test_guessed_ids_are_not_found(ent_bob, alice_corp, guess):
    response = logged_in(ent_bob).get(f"/registry/{guess}/")
    assert response.status_code == 404
    assert alice_corp.name.encode() not in response.content


def _basic(
    enterprise: Enterprise,
    fields=("address", "contact_name", "contact_phone", "contact_email", "high_tech_field"),
) -> dict:
    return {f: getattr(enterprise, f) for f in fields}


def _staff_form(enterprise: Enterprise) -> dict:
    data = _basic(enterprise, ("name", "district", "street", "industry_code", "registration_date"))
    return {**data, **_basic(enterprise)}


@pytest.mark.parametrize(
    "field, value", [("contact_email", "not-an-email"), ("contact_phone", "xxxx"), ("contact_phone", "12")]
)
def test_a_contact_that_cannot_be_reached_is_refused_on_its_field(ent_alice, alice_corp, field, value):
    response = logged_in(ent_alice).post(edit(ALICE_CODE), {**_basic(alice_corp), field: value})
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors and value in response.content.decode(), "the input is kept"
    alice_corp.refresh_from_db()
    assert getattr(alice_corp, field) == ""


def test_a_refusal_by_the_model_shows_beside_its_field(ent_alice, alice_corp, monkeypatch):
    from django.core.exceptions import ValidationError

    from kechuang.registry import services

    def refuse(**kwargs):
        raise ValidationError({"address": ["地址无法核实 / address cannot be verified"]})

    monkeypatch.setattr(services, "enterprise_update", refuse)
    response = logged_in(ent_alice).post(edit(ALICE_CODE), {**_basic(alice_corp), "address": "某处"})
    assert response.status_code == 200
    assert response.context["form"].errors["address"] == ["地址无法核实 / address cannot be verified"]


def test_an_enterprise_user_edits_their_contact_data_and_it_is_audited(ent_alice, alice_corp):
    response = logged_in(ent_alice).post(
        edit(ALICE_CODE), {**_basic(alice_corp), "contact_phone": "021-5555 0101"}
    )
    assert response.status_code == 302
    alice_corp.refresh_from_db()
    assert alice_corp.contact_phone == "021-5555 0101"
    entry = AuditLog.objects.filter(obj_id=ALICE_CODE).latest("at")
    assert entry.actor == ent_alice
    assert entry.after["contact_phone"] == "021-5555 0101"
    assert entry.before["contact_phone"] == ""


def test_an_enterprise_user_cannot_rename_their_enterprise(ent_alice, alice_corp):
    logged_in(ent_alice).post(edit(ALICE_CODE), {**_basic(alice_corp), "name": "改名公司"})
    alice_corp.refresh_from_db()
    assert alice_corp.name == "上海爱丽丝软件有限公司"


def test_an_enterprise_user_cannot_edit_another_enterprise(ent_bob, alice_corp):
    client = logged_in(ent_bob)
    before = AuditLog.objects.count()
    response = client.post(edit(ALICE_CODE), {**_basic(alice_corp), "contact_name": "鲍勃"})
    assert response.status_code == 404
    response = client.post(year_edit(ALICE_CODE, 2024), {"sales_revenue": "1"})
    assert response.status_code == 404
    alice_corp.refresh_from_db()
    assert alice_corp.contact_name == ""
    assert FiscalYear.objects.get(enterprise=alice_corp, year=2024).sales_revenue == Decimal(
        "52900000.00"
    )
    assert AuditLog.objects.count() == before


def test_the_auditor_cannot_edit(auditor_li, alice_corp):
    client = logged_in(auditor_li)
    assert client.get(edit(ALICE_CODE)).status_code == 403
    assert (
        client.post(edit(ALICE_CODE), {**_basic(alice_corp), "contact_name": "审计"}).status_code
        == 403
    )
    alice_corp.refresh_from_db()
    assert alice_corp.contact_name == ""


def test_a_form_posted_without_csrf_token_is_refused_and_changes_nothing(ent_alice, alice_corp):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ent_alice)
    response = client.post(edit(ALICE_CODE), {**_basic(alice_corp), "contact_name": "伪造"})
    assert response.status_code == 403
    alice_corp.refresh_from_db()
    assert alice_corp.contact_name == ""
    assert not AuditLog.objects.filter(obj_id=ALICE_CODE).exists()


# --- fiscal years -----------------------------------------------------------------


def _year_form(**figures) -> dict:
    return {"year": 2025, **{k: str(v) for k, v in figures.items()}}


def test_an_enterprise_user_adds_a_fiscal_year_and_blank_stays_unknown(ent_alice, alice_corp):
    client = logged_in(ent_alice)
    response = client.post(
        reverse("registry:fiscal_year_new", args=[ALICE_CODE]),
        _year_form(sales_revenue="61000000.00", staff_total=130, staff_sci_tech=15),
    )
    assert response.status_code == 302
    fy = FiscalYear.objects.get(enterprise=alice_corp, year=2025)
    assert fy.sales_revenue == Decimal("61000000.00")
    assert fy.rd_expense is None  # left blank: unknown, not zero
    assert AuditLog.objects.filter(obj_id__startswith=ALICE_CODE, actor=ent_alice).exists()


def test_adding_a_year_that_exists_is_refused_and_keeps_its_figures(ent_alice, alice_corp):
    before = FiscalYear.objects.get(enterprise=alice_corp, year=2024)
    response = logged_in(ent_alice).post(
        reverse("registry:fiscal_year_new", args=[ALICE_CODE]), {"year": "2024", "sales_revenue": "1"}
    )
    assert response.status_code == 200
    assert "2024 年度已存在" in response.content.decode()
    after = FiscalYear.objects.get(enterprise=alice_corp, year=2024)
    assert after.sales_revenue == before.sales_revenue and after.staff_total == before.staff_total


def test_staff_correct_a_fiscal_year_and_the_change_is_audited(staff_zhang, alice_corp):
    client = logged_in(staff_zhang)
    response = client.post(
        year_edit(ALICE_CODE, 2024),
        {
            "sales_revenue": "53000000.00",
            "rd_expense": "2200000.00",
            "staff_total": "120",
            "staff_sci_tech": "14",
        },
    )
    assert response.status_code == 302
    assert FiscalYear.objects.get(enterprise=alice_corp, year=2024).sales_revenue == Decimal(
        "53000000.00"
    )
    entry = AuditLog.objects.filter(obj_id__startswith=ALICE_CODE).latest("at")
    assert entry.actor == staff_zhang
    assert "52900000" in str(entry.before) and "53000000" in str(entry.after)


def test_more_sci_tech_staff_than_staff_is_refused_and_nothing_changes(ent_alice, alice_corp):
    response = logged_in(ent_alice).post(
        year_edit(ALICE_CODE, 2024), {"staff_total": "10", "staff_sci_tech": "14"}
    )
    assert response.status_code == 200
    assert FiscalYear.objects.get(enterprise=alice_corp, year=2024).staff_total == Decimal("120")
    assert not AuditLog.objects.exclude(action="login").exists()


def test_a_year_the_enterprise_does_not_have_is_not_found(ent_alice, alice_corp):
    assert logged_in(ent_alice).get(year_edit(ALICE_CODE, 1999)).status_code == 404


# --- export ---------------------------------------------------------------------


def test_staff_and_auditors_download_the_registry_as_excel(
    staff_zhang, auditor_li, alice_corp, bob_corp
):
    import openpyxl

    for user in (staff_zhang, auditor_li):
        response = logged_in(user).get(reverse("registry:export"), {"street": "桃浦镇"})
        assert response.status_code == 200
        workbook = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
        cells = {str(c.value) for ws in workbook.worksheets for row in ws.iter_rows() for c in row}
        assert BOB_CODE in cells and ALICE_CODE not in cells


def test_an_unknown_filter_value_lists_nothing_and_says_which_filter(staff_zhang, alice_corp, bob_corp):
    page = logged_in(staff_zhang).get(reverse("registry:enterprise_list"), {"street": "不存在的街道"})
    html = page.content.decode()
    assert 'data-testid="filter-errors"' in html and "街道/镇" in html
    assert ALICE_CODE not in html and BOB_CODE not in html
    assert reverse("registry:export") not in html


@pytest.mark.parametrize("query", [{"street": "不存在的街道"}, {"certification": "nobel"}])
def test_an_invalid_export_filter_is_refused_not_widened_to_everything(staff_zhang, query):
    response = logged_in(staff_zhang).get(reverse("registry:export"), query)
    assert response.status_code == 400
    assert next(iter(query)) in response.content.decode()


def test_enterprise_users_cannot_export_the_registry(ent_alice):
    assert logged_in(ent_alice).get(reverse("registry:export")).status_code == 403


# --- import -----------------------------------------------------------------------

NEW_CODE = credit_code("91310107MA1G77777")


def _csv(rows: list[str]) -> bytes:
    return (
        "\n".join(["统一社会信用代码,企业名称,街道/镇,国民经济行业分类代码", *rows]) + "\n"
    ).encode()


def _upload(client: Client, data: bytes, name: str = "enterprises.csv", **headers):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        reverse("registry:import"), {"file": SimpleUploadedFile(name, data)}, headers=headers
    )


def test_staff_import_a_good_file_and_importing_it_again_changes_nothing(staff_zhang):
    client = logged_in(staff_zhang)
    data = _csv([f"{NEW_CODE},上海新导入科技有限公司,桃浦镇,6513"])
    first = _upload(client, data)
    assert first.status_code == 200 and 'data-testid="import-ok"' in first.content.decode()
    assert Enterprise.objects.get(credit_code=NEW_CODE).name == "上海新导入科技有限公司"
    logged = AuditLog.objects.filter(obj_id=NEW_CODE).count()
    assert logged == 1 and AuditLog.objects.get(obj_id=NEW_CODE).actor == staff_zhang

    _upload(client, data)
    assert Enterprise.objects.filter(credit_code=NEW_CODE).count() == 1
    assert AuditLog.objects.filter(obj_id=NEW_CODE).count() == logged


def test_a_bad_file_is_rejected_whole_with_a_report_page_and_workbook(staff_zhang):
    import openpyxl

    client = logged_in(staff_zhang)
    bad = _csv([f"{NEW_CODE},好企业,桃浦镇,6513", "91310107MA1G0000XX,坏代码,桃浦镇,6513"])
    # The page's script asks for the result block only.
    response = _upload(client, bad, **{"X-Requested-With": "fetch"})
    page = response.content.decode()
    assert 'data-testid="import-rejected"' in page and "91310107MA1G0000XX" in page
    assert "<html" not in page
    assert not Enterprise.objects.filter(credit_code=NEW_CODE).exists()

    report = client.get(reverse("registry:import_errors"))
    assert report.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(report.streaming_content)))
    values = [c.value for row in workbook.active.iter_rows() for c in row]
    assert "91310107MA1G0000XX" in values and 3 in values  # the row as the spreadsheet numbers it


def test_the_error_workbook_of_nothing_is_not_found(staff_zhang):
    assert logged_in(staff_zhang).get(reverse("registry:import_errors")).status_code == 404


def test_a_good_import_replaces_the_last_error_report_and_others_cannot_fetch_it(
    staff_zhang, admin_root
):
    client = logged_in(staff_zhang)
    _upload(client, _csv(["91310107MA1G0000XX,坏代码,桃浦镇,6513"]))
    assert client.get(reverse("registry:import_errors")).status_code == 200
    # Another importer's session does not know the report's name.
    assert logged_in(admin_root).get(reverse("registry:import_errors")).status_code == 404
    _upload(client, _csv([f"{NEW_CODE},好企业,桃浦镇,6513"]))
    assert client.get(reverse("registry:import_errors")).status_code == 404


@pytest.mark.parametrize("user", ["ent_alice", "auditor_li", "inst_lab", "expert_wang"])
def test_only_staff_import(request, user):
    client = logged_in(request.getfixturevalue(user))
    assert client.get(reverse("registry:import")).status_code == 403
    response = _upload(client, _csv([f"{NEW_CODE},偷偷导入,桃浦镇,6513"]))
    assert response.status_code == 403
    assert not Enterprise.objects.filter(credit_code=NEW_CODE).exists()


def test_an_import_posted_without_csrf_token_is_refused(staff_zhang):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_zhang)
    response = _upload(client, _csv([f"{NEW_CODE},伪造导入,桃浦镇,6513"]))
    assert response.status_code == 403
    assert not Enterprise.objects.filter(credit_code=NEW_CODE).exists()


def test_the_page_polls_the_rows_checked_so_far_and_only_its_own(staff_zhang, admin_root):
    from kechuang.registry.views import ImportProgress

    progress = ImportProgress(staff_zhang.pk, "p" * 16)
    progress.advance(1000)
    url = reverse("registry:import_progress", args=["p" * 16])
    assert logged_in(staff_zhang).get(url).json() == {"rows": 1000}
    assert logged_in(admin_root).get(url).status_code == 404  # same id, another user
    assert (
        logged_in(staff_zhang)
        .get(reverse("registry:import_progress", args=["..%2F..%2Fx"]))
        .status_code
        == 404
    )
    progress.finish()
    assert logged_in(staff_zhang).get(url).status_code == 404


def test_an_import_reports_progress_and_leaves_no_progress_file(staff_zhang, monkeypatch, tmp_path):
    from kechuang.registry.views import ImportProgress

    seen: list[int] = []
    advance = ImportProgress.advance

    def spy(self, rows: int) -> None:
        advance(self, rows)
        seen.append(self.read()["rows"])

    monkeypatch.setattr(ImportProgress, "advance", spy)
    rows = [f"{credit_code(f'91310107MA1H{i:05d}')},进度测试{i},桃浦镇,6513" for i in range(1500)]
    client = logged_in(staff_zhang)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        reverse("registry:import"),
        {"file": SimpleUploadedFile("big.csv", _csv(rows)), "progress_id": "q" * 20},
    )
    assert 'data-testid="import-ok"' in response.content.decode()
    assert seen and seen[-1] == 1500
    assert not list(tmp_path.glob("import-progress/*.json"))
