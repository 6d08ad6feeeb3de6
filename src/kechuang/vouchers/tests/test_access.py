"""The remaining doors, each tried by someone who must be refused: the pages'
POST actions and API endpoints not already covered by test_api and test_views."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client
from django.urls import reverse

from kechuang.testing import PASSWORD
from kechuang.vouchers import access, services
from kechuang.vouchers.models import (
    Claim,
    Institution,
    Offering,
    Program,
    QuotaApplication,
    ServiceOrder,
)
from kechuang.vouchers.tests import factories as f
from kechuang.vouchers.tests.test_api import Api


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def claimed(prog, staff_zhang, ent_alice, inst_lab, offer):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="v"
    )
    services.order_deliver(order=order, actor=inst_lab, upload=f.pdf())
    return services.claim_submit(order=order, actor=inst_lab)


@pytest.fixture
def batch(prog, staff_zhang, claimed):
    services.claim_approve(claim=claimed, actor=staff_zhang, idempotency_key="c")
    return services.settlement_batch_create(program=prog, actor=staff_zhang, idempotency_key="s")


def test_only_staff_and_auditors_download_payment_files(
    batch, ent_alice, inst_lab, inst_other, auditor_li
):
    for user in (ent_alice, inst_lab, inst_other):
        assert Api(user).get(f"/settlements/{batch.pk}/payment.xlsx").status_code == 403
        assert (
            login(user).get(reverse("vouchers:settlement_file", args=[batch.pk])).status_code == 403
        )
    assert Api(auditor_li).get(f"/settlements/{batch.pk}/payment.xlsx").status_code == 200


def test_institutions_see_their_own_payments_only(
    batch, inst_lab, inst_other, other_lab, ent_alice
):
    assert len(Api(inst_lab).get("/claims", status="paid").json()) == 1
    assert Api(inst_other).get("/claims").json() == []
    assert Api(ent_alice).get("/claims").json() == []


def test_claims_are_decided_by_staff_only(
    claimed, ent_alice, ent_bob, inst_lab, inst_other, other_lab
):
    for user in (ent_alice, ent_bob, inst_other):
        assert Api(user).post(f"/claims/{claimed.pk}/reject", {"reason": "x"}).status_code == 404
        assert (
            login(user)
            .post(
                reverse("vouchers:claim_decide", args=[claimed.pk]),
                {"decision": "reject", "reason": "x"},
            )
            .status_code
            == 403
        )
    assert Api(inst_lab).post(f"/claims/{claimed.pk}/reject", {"reason": "x"}).status_code == 403
    assert Claim.objects.get().status == "submitted"


def test_quota_is_for_enterprises_and_decisions_for_staff(prog, ent_alice, ent_bob, inst_lab):
    assert (
        Api(inst_lab).post("/quota-applications", {"program": prog.pk, "amount": "10"}).status_code
        == 403
    )
    assert (
        login(inst_lab)
        .post(
            reverse("vouchers:quota_apply"),
            {"program": prog.pk, "amount": "10", "applicant_type": "enterprise"},
        )
        .status_code
        == 403
    )
    assert Api(inst_lab).get("/quota").status_code == 403
    app = services.quota_apply(
        program=prog, enterprise=ent_alice.enterprise, actor=ent_alice, amount="10"
    )
    assert (
        Api(ent_bob).post(f"/quota-applications/{app.pk}/reject", {"reason": "x"}).status_code
        == 404
    )
    assert (
        Api(ent_alice).post(f"/quota-applications/{app.pk}/reject", {"reason": "x"}).status_code
        == 403
    )
    assert QuotaApplication.objects.get().status == "submitted"


def test_orders_are_recorded_by_enterprises(prog, inst_lab, offer, staff_zhang):
    body = {
        "program": prog.pk,
        "offering": offer.pk,
        "contract_amount": "100",
        "order_date": str(f.TODAY),
        "start_date": str(f.TODAY),
        "end_date": str(f.TODAY),
    }
    assert Api(inst_lab).post("/orders", body).status_code == 403
    assert login(inst_lab).post(reverse("vouchers:order_create"), body).status_code == 403
    assert Api(staff_zhang).post("/orders", body).status_code == 403
    assert not ServiceOrder.objects.exists()


def test_institution_pages_refuse_other_roles(staff_zhang, ent_alice, inst_other):
    inst = services.institution_apply(
        actor=inst_other, name="待审机构", credit_code="12310000MB0000055X"
    )
    assert (
        login(ent_alice)
        .post(
            reverse("vouchers:institution_apply"),
            {"name": "x", "credit_code": "12310000MB0000056X"},
        )
        .status_code
        == 403
    )
    assert (
        login(ent_alice)
        .post(reverse("vouchers:institution_decide", args=[inst.pk]), {"decision": "approve"})
        .status_code
        == 403
    )
    assert (
        login(ent_alice)
        .post(
            reverse("vouchers:offering_create"),
            {"category": f.category().pk, "name": "x", "price": "1"},
        )
        .status_code
        == 403
    )
    # A pending institution is not in anyone's list but the staff's and its own.
    assert all(i["id"] != inst.pk for i in Api(ent_alice).get("/institutions").json())
    assert any(i["id"] == inst.pk for i in Api(inst_other).get("/institutions").json())
    assert Institution.objects.get(pk=inst.pk).status == "pending"
    assert not Offering.objects.exists()


def test_order_for_enterprise_reads_what_the_orm_reads(
    prog, staff_zhang, ent_alice, ent_bob, inst_lab, auditor_li, offer
):
    # It reads with plain SQL (issue 6): the same instance the ORM would build,
    # and the same refusals as every other lookup.
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "1234.56"), actor=ent_alice, idempotency_key="r"
    )
    got = access.order_for_enterprise(ent_alice, str(order.pk))
    orm = ServiceOrder.objects.select_related("program", "enterprise").get(pk=order.pk)
    for field in ServiceOrder._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(orm, field.attname), field.name
    for field in Program._meta.concrete_fields:
        assert getattr(got.program, field.attname) == getattr(orm.program, field.attname)
    assert got.enterprise == orm.enterprise
    with pytest.raises(Http404):
        access.order_for_enterprise(ent_bob, order.pk)
    for pk in (order.pk + 1000, "x", None, 2**70, -1, 0):
        with pytest.raises(Http404):
            access.order_for_enterprise(ent_alice, pk)
    for user in (staff_zhang, auditor_li):
        with pytest.raises(PermissionDenied):
            access.order_for_enterprise(user, order.pk)
    with pytest.raises((Http404, PermissionDenied)):
        access.order_for_enterprise(inst_lab, order.pk)
