"""The REST API under /api/, each endpoint tried by the user who must be refused."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from kechuang.accounts import tokens
from kechuang.accounts.models import AuditLog
from kechuang.registry.models import Enterprise, FiscalYear
from kechuang.testing import ALICE_CODE, BOB_CODE, credit_code

NOWHERE = credit_code("91310107MA1G99999")


class Api:
    """A client that sends one user's bearer token, as a script would."""

    def __init__(self, user=None, token: str | None = None) -> None:
        self.client = Client()
        self.headers = {}
        if user is not None:
            token = tokens.token_create(user=user)[1]
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params):
        return self.client.get(f"/api{path}", params, headers=self.headers)

    def patch(self, path: str, body: dict):
        return self.client.patch(
            f"/api{path}", json.dumps(body), content_type="application/json", headers=self.headers
        )

    def put(self, path: str, body: dict):
        return self.client.put(
            f"/api{path}", json.dumps(body), content_type="application/json", headers=self.headers
        )

    def post_file(self, path: str, name: str, data: bytes):
        from django.core.files.uploadedfile import SimpleUploadedFile

        return self.client.post(
            f"/api{path}", {"file": SimpleUploadedFile(name, data)}, headers=self.headers
        )


READS = [
    "/enterprises/{code}",
    "/enterprises/{code}/fiscal-years",
    "/enterprises/{code}/ip",
    "/enterprises/{code}/certifications",
    "/enterprises/{code}/history",
]


def test_the_openapi_spec_and_docs_are_served_without_a_token(client):
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200
    body = spec.json()
    assert "/api/enterprises/{credit_code}" in body["paths"]
    assert body["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"cdn" not in docs.content.lower()


@pytest.mark.parametrize("path", ["/me", "/enterprises", *READS])
def test_no_token_or_a_wrong_token_is_401(alice_corp, path):
    for api in (Api(), Api(token="kc_guessed"), Api(token="not-even-our-format")):
        response = api.get(path.format(code=ALICE_CODE))
        assert response.status_code == 401
        assert response.json() == {"message": "Authentication required", "extra": {"field": None}}


def test_a_revoked_token_is_401(ent_alice):
    token, clear = tokens.token_create(user=ent_alice)
    tokens.token_revoke(token=token)
    assert Api(token=clear).get("/me").status_code == 401


def test_me_says_whose_token_it_is(ent_alice):
    assert Api(ent_alice).get("/me").json() == {
        "username": "ent_alice",
        "role": "enterprise",
        "enterprise": ALICE_CODE,
    }


def test_staff_list_and_search_enterprises(staff_zhang, alice_corp, bob_corp):
    api = Api(staff_zhang)
    everyone = api.get("/enterprises").json()
    assert everyone["count"] == 2 and everyone["pages"] == 1
    found = api.get("/enterprises", q="鲍勃").json()
    assert [e["credit_code"] for e in found["items"]] == [BOB_CODE]
    assert api.get("/enterprises", street="长风新村街道").json()["count"] == 1


def test_an_enterprise_token_lists_only_its_own_enterprise(ent_alice, bob_corp):
    listed = Api(ent_alice).get("/enterprises", q="鲍勃").json()
    assert listed["count"] == 0
    assert [e["credit_code"] for e in Api(ent_alice).get("/enterprises").json()["items"]] == [
        ALICE_CODE
    ]


@pytest.mark.parametrize("path", READS)
def test_another_enterprises_objects_are_not_found_like_codes_nobody_has(ent_bob, alice_corp, path):
    api = Api(ent_bob)
    other = api.get(path.format(code=ALICE_CODE))
    missing = api.get(path.format(code=NOWHERE))
    assert other.status_code == missing.status_code == 404
    assert other.content == missing.content
    assert other.json() == {"message": "Not found", "extra": {"field": None}}


@pytest.mark.parametrize("user", ["inst_lab", "expert_wang"])
def test_tokens_of_roles_without_registry_access_see_nothing(request, alice_corp, user):
    api = Api(request.getfixturevalue(user))
    assert api.get("/enterprises").json()["count"] == 0
    assert api.get(f"/enterprises/{ALICE_CODE}").status_code == 404


def test_reads_of_ones_own_enterprise(ent_alice, alice_corp):
    api = Api(ent_alice)
    assert api.get(f"/enterprises/{ALICE_CODE}").json()["name"] == alice_corp.name
    years = api.get(f"/enterprises/{ALICE_CODE}/fiscal-years").json()
    assert years[0]["year"] == 2024 and Decimal(years[0]["sales_revenue"]) == Decimal("52900000.00")
    assert years[0]["total_assets"] is None  # unknown stays null
    assert api.get(f"/enterprises/{ALICE_CODE}/ip").json() == []
    assert api.get(f"/enterprises/{ALICE_CODE}/certifications").json() == []


def test_an_enterprise_updates_its_own_contact_and_the_change_is_audited(ent_alice, alice_corp):
    response = Api(ent_alice).patch(
        f"/enterprises/{ALICE_CODE}", {"contact_email": "rd@alice.example"}
    )
    assert response.status_code == 200 and response.json()["contact_email"] == "rd@alice.example"
    entry = AuditLog.objects.filter(obj_id=ALICE_CODE).latest("at")
    assert entry.actor == ent_alice and entry.after["contact_email"] == "rd@alice.example"
    history = Api(ent_alice).get(f"/enterprises/{ALICE_CODE}/history").json()
    assert history[0]["actor"] == "ent_alice"


def test_nobody_can_write_into_an_enterprise_history_by_failing_a_login(ent_alice, alice_corp):
    from django.test import Client

    for suffix in ("", "/2024", "/GR2024"):
        Client().post("/accounts/login/", {"username": ALICE_CODE + suffix, "password": "x"})
    assert AuditLog.objects.filter(action="login_failed").count() == 3
    history = Api(ent_alice).get(f"/enterprises/{ALICE_CODE}/history").json()
    assert all(entry["action"] != "login_failed" for entry in history)


def test_an_enterprise_token_cannot_patch_another_enterprise(ent_bob, alice_corp):
    response = Api(ent_bob).patch(f"/enterprises/{ALICE_CODE}", {"contact_name": "鲍勃"})
    assert response.status_code == 404
    alice_corp.refresh_from_db()
    assert alice_corp.contact_name == ""
    assert not AuditLog.objects.exclude(obj_type="api_token").exists()


def test_an_enterprise_cannot_rename_itself(ent_alice, alice_corp):
    response = Api(ent_alice).patch(f"/enterprises/{ALICE_CODE}", {"name": "改名公司"})
    assert response.status_code == 400
    assert response.json()["extra"]["field"] == "name"
    alice_corp.refresh_from_db()
    assert alice_corp.name == "上海爱丽丝软件有限公司"


def test_an_auditor_token_cannot_write(auditor_li, alice_corp):
    api = Api(auditor_li)
    assert api.patch(f"/enterprises/{ALICE_CODE}", {"contact_name": "审计"}).status_code == 403
    assert (
        api.put(f"/enterprises/{ALICE_CODE}/fiscal-years/2024", {"sales_revenue": "1"}).status_code
        == 403
    )
    assert FiscalYear.objects.get(enterprise=alice_corp, year=2024).sales_revenue == Decimal(
        "52900000.00"
    )


def test_staff_rename_an_enterprise(staff_zhang, alice_corp):
    response = Api(staff_zhang).patch(
        f"/enterprises/{ALICE_CODE}", {"name": "上海爱丽丝信息技术有限公司"}
    )
    assert response.status_code == 200
    assert Enterprise.objects.get(pk=alice_corp.pk).name == "上海爱丽丝信息技术有限公司"


def test_fiscal_year_figures_are_replaced_and_audited(ent_alice, alice_corp):
    response = Api(ent_alice).put(
        f"/enterprises/{ALICE_CODE}/fiscal-years/2024",
        {"sales_revenue": "53000000.00", "staff_total": "120", "staff_sci_tech": "14"},
    )
    assert response.status_code == 200, response.content
    fy = FiscalYear.objects.get(enterprise=alice_corp, year=2024)
    assert fy.sales_revenue == Decimal("53000000.00") and fy.rd_expense is None
    assert AuditLog.objects.filter(obj_id__startswith=ALICE_CODE, actor=ent_alice).exists()


def test_a_bad_figure_names_its_field_and_changes_nothing(ent_alice, alice_corp):
    api = Api(ent_alice)
    response = api.put(f"/enterprises/{ALICE_CODE}/fiscal-years/2024", {"sales_revenue": "lots"})
    assert response.status_code == 422
    assert response.json()["extra"]["field"] == "sales_revenue"
    response = api.put(
        f"/enterprises/{ALICE_CODE}/fiscal-years/2024",
        {"staff_total": "10", "staff_sci_tech": "14"},
    )
    assert response.status_code == 400
    assert set(response.json()) == {"message", "extra"}
    assert FiscalYear.objects.get(enterprise=alice_corp, year=2024).staff_total == Decimal("120")


@pytest.mark.parametrize("user", ["ent_alice", "auditor_li", "inst_lab", "expert_wang"])
def test_only_staff_import(request, user):
    csv = "统一社会信用代码,企业名称\n{},新企业\n".format(credit_code("91310107MA1G77777")).encode()
    response = Api(request.getfixturevalue(user)).post_file("/enterprises/import", "e.csv", csv)
    assert response.status_code == 403
    assert set(response.json()) == {"message", "extra"}
    assert not Enterprise.objects.filter(name="新企业").exists()


def test_staff_import_through_the_api_and_a_bad_file_lists_every_bad_row(staff_zhang):
    api = Api(staff_zhang)
    good = f"统一社会信用代码,企业名称\n{credit_code('91310107MA1G77777')},新企业\n".encode()
    response = api.post_file("/enterprises/import", "e.csv", good)
    assert response.status_code == 200
    assert response.json()["counts"]["enterprises"]["created"] == 1

    bad = "统一社会信用代码,企业名称\n91310107MA1G0000XX,坏\n,无代码\n".encode()
    response = api.post_file("/enterprises/import", "e.csv", bad)
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False and {e["row"] for e in body["errors"]} == {2, 3}
    assert Enterprise.objects.count() == 1


def test_a_change_the_model_refuses_names_its_field(staff_zhang, alice_corp):
    response = Api(staff_zhang).patch(f"/enterprises/{ALICE_CODE}", {"industry_code": "9999"})
    assert response.status_code == 400
    assert response.json()["extra"]["field"] == "industry_code"
    response = Api(staff_zhang).patch(f"/enterprises/{ALICE_CODE}", {"name": ""})
    assert response.status_code == 400
    assert response.json()["extra"]["field"] == "name"
    assert not AuditLog.objects.exclude(obj_type="api_token").exists()


#: Operations open to anonymous callers on purpose, each with its reason.
PUBLIC_OPERATIONS = {
    # The public policy calculator: typed facts in, a decision out; reads no registry data.
    ("post", "/api/calculator/try/{policy_id}"),
}


def test_every_operation_in_the_spec_refuses_a_request_without_a_token(client, alice_corp):
    # New endpoints are covered as soon as they appear in the spec.
    spec = client.get("/api/openapi.json").json()
    checked = 0
    for path, operations in spec["paths"].items():
        url = path.replace("{credit_code}", ALICE_CODE).replace("{year}", "2024")
        for method in operations:
            if (method, path) in PUBLIC_OPERATIONS:
                continue
            response = getattr(client, method)(url, content_type="application/json")
            assert response.status_code == 401, (method, path)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("year", ["99999", "0", "-1", "abc"])
def test_an_impossible_year_is_refused_before_anything_is_written(ent_alice, alice_corp, year):
    response = Api(ent_alice).put(f"/enterprises/{ALICE_CODE}/fiscal-years/{year}", {})
    assert response.status_code in (404, 422)
    assert FiscalYear.objects.filter(enterprise=alice_corp).count() == 1


def test_an_enterprise_token_cannot_write_another_enterprises_fiscal_year(ent_bob, alice_corp):
    api = Api(ent_bob)
    other = api.put(f"/enterprises/{ALICE_CODE}/fiscal-years/2024", {"sales_revenue": "1.00"})
    missing = api.put(f"/enterprises/{NOWHERE}/fiscal-years/2024", {"sales_revenue": "1.00"})
    assert other.status_code == missing.status_code == 404 and other.content == missing.content
    new_year = api.put(f"/enterprises/{ALICE_CODE}/fiscal-years/2025", {"sales_revenue": "1.00"})
    assert new_year.status_code == 404
    assert list(
        FiscalYear.objects.filter(enterprise=alice_corp).values_list("year", flat=True)
    ) == [2024]
    assert FiscalYear.objects.get(enterprise=alice_corp).sales_revenue == Decimal("52900000.00")


def test_staff_set_a_yes_no_fact_and_the_response_shows_it(staff_zhang, alice_corp):
    api = Api(staff_zhang)
    response = api.patch(f"/enterprises/{ALICE_CODE}", {"audit_based_cit_collection": False})
    assert response.status_code == 200, response.content
    assert response.json()["audit_based_cit_collection"] is False
    alice_corp.refresh_from_db()
    assert alice_corp.audit_based_cit_collection is False
    entry = AuditLog.objects.filter(obj_id=ALICE_CODE).latest("at")
    assert entry.after == {"audit_based_cit_collection": False}


def test_an_enterprise_cannot_set_its_own_yes_no_facts(ent_alice, alice_corp):
    before = alice_corp.compliance_checked
    response = Api(ent_alice).patch(
        f"/enterprises/{ALICE_CODE}", {"compliance_checked": not before}
    )
    assert response.status_code == 400 and response.json()["extra"]["field"] == "compliance_checked"
    alice_corp.refresh_from_db()
    assert alice_corp.compliance_checked is before


def test_a_field_the_api_does_not_know_is_refused_not_ignored(staff_zhang, alice_corp):
    response = Api(staff_zhang).patch(
        f"/enterprises/{ALICE_CODE}", {"contact_name": "张三", "nmae": "改名公司"}
    )
    assert response.status_code == 422
    assert "nmae" in response.content.decode()
    alice_corp.refresh_from_db()
    assert alice_corp.contact_name == "" and alice_corp.name == "上海爱丽丝软件有限公司"


def test_an_e_mail_address_that_is_not_one_is_refused_naming_it(ent_alice, alice_corp):
    response = Api(ent_alice).patch(f"/enterprises/{ALICE_CODE}", {"contact_email": "rd at alice"})
    assert response.status_code == 400 and response.json()["extra"]["field"] == "contact_email"
    alice_corp.refresh_from_db()
    assert alice_corp.contact_email == ""


def test_a_contact_stored_before_the_checks_does_not_block_other_changes(staff_zhang, alice_corp):
    Enterprise.objects.filter(pk=alice_corp.pk).update(
        contact_phone="无", contact_email="见合同", compliance_checked=False
    )
    response = Api(staff_zhang).patch(f"/enterprises/{ALICE_CODE}", {"compliance_checked": True})
    assert response.status_code == 200, response.content
    alice_corp.refresh_from_db()
    assert alice_corp.compliance_checked is True and alice_corp.contact_phone == "无"


@pytest.mark.parametrize("field", ["contact_email", "industry_code"])
def test_null_for_a_field_that_cannot_be_empty_is_refused_naming_it(staff_zhang, alice_corp, field):
    before = getattr(alice_corp, field)
    response = Api(staff_zhang).patch(f"/enterprises/{ALICE_CODE}", {field: None})
    assert response.status_code == 400, response.content
    assert response.json()["extra"]["field"] == field
    alice_corp.refresh_from_db()
    assert getattr(alice_corp, field) == before


@pytest.mark.parametrize("conversions", [9223372036854775808, 2**31, 1e20])
def test_a_count_no_column_can_hold_is_refused_not_a_crash(staff_zhang, alice_corp, conversions):
    api = Api(staff_zhang)
    before = api.get(f"/enterprises/{ALICE_CODE}/fiscal-years").json()
    response = api.put(f"/enterprises/{ALICE_CODE}/fiscal-years/2024", {"conversions": conversions})
    assert response.status_code in (400, 422), response.content
    assert api.get(f"/enterprises/{ALICE_CODE}/fiscal-years").json() == before


@pytest.mark.parametrize(
    "figure, value, words",
    [
        ("total_assets", "1e20", "too large"),
        ("sales_revenue", "1000.005", "decimal places"),
        ("staff_total", "12345678901", "too large"),
    ],
)
def test_a_figure_its_column_cannot_hold_is_refused_and_pages_still_read(
    ent_alice, staff_zhang, alice_corp, figure, value, words
):
    from django.test import Client

    api = Api(ent_alice)
    before = api.get(f"/enterprises/{ALICE_CODE}/fiscal-years").json()
    response = api.put(f"/enterprises/{ALICE_CODE}/fiscal-years/2023", {figure: value})
    assert response.status_code == 400, response.content
    assert response.json()["extra"]["field"] == figure and words in response.json()["message"]
    assert api.get(f"/enterprises/{ALICE_CODE}/fiscal-years").json() == before
    staff = Client()
    staff.force_login(staff_zhang)
    assert staff.get(f"/registry/{ALICE_CODE}/").status_code == 200


def test_an_implausible_registration_date_is_refused(staff_zhang, alice_corp):
    response = Api(staff_zhang).patch(
        f"/enterprises/{ALICE_CODE}", {"registration_date": "0001-01-01"}
    )
    assert response.status_code == 400
    assert response.json()["extra"]["field"] == "registration_date"
