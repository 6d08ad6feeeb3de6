"""Voucher pages: each role's page, the actions through forms, and every page
and action tried by the user who must be refused."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from kechuang.testing import PASSWORD
from kechuang.vouchers import selectors, services
from kechuang.vouchers.models import Claim, QuotaApplication, ServiceOrder
from kechuang.vouchers.tests import factories as f


def login(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def applied(prog, staff_zhang, ent_alice, offer):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = f.order(prog, ent_alice, offer, "20000")
    return services.order_voucher_apply(order=order, actor=ent_alice, idempotency_key="v")


def test_each_role_sees_its_own_voucher_page(
    prog, staff_zhang, ent_alice, inst_lab, lab, auditor_li, applied
):
    page = login(ent_alice).get(reverse("vouchers:home")).content.decode()
    assert "我的额度" in page and f"#{applied.pk}" in page
    page = login(inst_lab).get(reverse("vouchers:home")).content.decode()
    assert "兑付申请" in page and f"#{applied.pk}" in page
    page = login(staff_zhang).get(reverse("vouchers:home")).content.decode()
    assert "额度审批" in page and "兑付审核" in page
    page = login(auditor_li).get(reverse("vouchers:home")).content.decode()
    assert reverse("vouchers:ledger", args=[prog.pk]) in page


def test_the_navigation_leads_every_voucher_role_to_its_page_and_links_only_what_it_may_open(
    prog, staff_zhang, ent_alice, inst_lab, auditor_li, expert_wang, applied
):
    # The menu shows the link exactly to those the voucher page lets in.
    for user in (staff_zhang, ent_alice, inst_lab, auditor_li, expert_wang):
        client = login(user)
        linked = 'data-testid="nav-vouchers"' in client.get(reverse("home")).content.decode()
        opens = client.get(reverse("vouchers:home")).status_code == 200
        assert linked == opens == (user != expert_wang), user.username
    # The ledger links to the audit log only for those who may read it.
    ledger = reverse("vouchers:ledger", args=[prog.pk])
    audit = reverse("accounts:audit_log")
    assert audit not in login(staff_zhang).get(ledger).content.decode()
    assert audit in login(auditor_li).get(ledger).content.decode()


def test_an_order_the_service_refuses_shows_again_as_typed_with_the_reason_beside_it(
    prog, ent_alice, offer
):
    r = login(ent_alice).post(
        reverse("vouchers:order_create"),
        {
            "program": prog.pk, "offering": offer.pk, "contract_number": "HT-2026-017",
            "contract_amount": "20000", "order_date": "2026-05-01",
            "start_date": "2026-06-30", "end_date": "2026-06-01",
        },
    )
    page = r.content.decode()
    assert r.status_code == 400 and 'data-testid="order-form"' in page
    assert 'value="HT-2026-017"' in page and 'value="20000"' in page
    assert f'<option value="{offer.pk}" selected>' in page
    assert "end_date" in r.context["order_form"].errors, "the reason is beside its field"
    assert not ServiceOrder.objects.exists()


def test_anonymous_users_are_sent_to_login(prog):
    r = Client().get(reverse("vouchers:home"))
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


def test_the_flow_through_the_pages(prog, staff_zhang, ent_alice, inst_lab, offer):
    alice, staff, lab = login(ent_alice), login(staff_zhang), login(inst_lab)
    alice.post(
        reverse("vouchers:quota_apply"),
        {
            "program": prog.pk,
            "amount": "30000",
            "applicant_type": "enterprise",
            "registered_in_shanghai": "on",
            "is_tsme": "on",
        },
    )
    app = QuotaApplication.objects.get()
    staff.post(
        reverse("vouchers:quota_decide", args=[app.pk]),
        {"decision": "approve", "amount": "30000", "idempotency_key": "page-q"},
    )
    # A double-submitted form (same hidden key) issues once.
    staff.post(
        reverse("vouchers:quota_decide", args=[app.pk]),
        {"decision": "approve", "amount": "30000", "idempotency_key": "page-q"},
    )
    assert selectors.quota_balance(prog, ent_alice.enterprise) == 30000
    r = alice.post(
        reverse("vouchers:order_create"),
        {
            "program": prog.pk,
            "offering": offer.pk,
            "contract_amount": "10000",
            "order_date": f.TODAY,
            "start_date": f.TODAY,
            "end_date": f.TODAY,
        },
    )
    order = ServiceOrder.objects.get()
    assert r["Location"] == reverse("vouchers:order", args=[order.pk])
    alice.post(reverse("vouchers:order_apply", args=[order.pk]), {"idempotency_key": "page-o"})
    order.refresh_from_db()
    assert order.status == "voucher_applied"
    page = alice.get(reverse("vouchers:order", args=[order.pk])).content.decode()
    assert order.ratio_article in page and order.policy_sha256 in page
    lab.post(reverse("vouchers:order_deliver", args=[order.pk]), {"file": f.pdf()})
    lab.post(reverse("vouchers:order_claim", args=[order.pk]))
    claim = Claim.objects.get()
    staff.post(
        reverse("vouchers:claim_decide", args=[claim.pk]),
        {"decision": "approve", "idempotency_key": "page-c"},
    )
    staff.post(reverse("vouchers:settlement_create", args=[prog.pk]), {"idempotency_key": "page-s"})
    assert Claim.objects.get().status == "paid"
    page = staff.get(reverse("vouchers:program", args=[prog.pk])).content.decode()
    assert "✓" in page and "支付文件" in page
    assert staff.get(reverse("vouchers:program_chart", args=[prog.pk])).content.startswith(
        b"\x89PNG"
    )
    assert staff.get(reverse("vouchers:program_export", args=[prog.pk])).content[:2] == b"PK"
    batch = claim.order.program.batches.get()
    assert staff.get(reverse("vouchers:settlement_file", args=[batch.pk])).content[:2] == b"PK"
    assert lab.get(reverse("vouchers:order_delivery_file", args=[order.pk])).content.startswith(
        b"%PDF"
    )


def test_a_start_up_team_applying_on_the_page_can_spend_its_quota(
    prog, staff_zhang, ent_alice, offer
):
    alice = login(ent_alice)
    team = {"program": prog.pk, "amount": "20000", "applicant_type": "startup_team"}
    r = alice.post(reverse("vouchers:quota_apply"), team, follow=True)
    assert "核心成员人数" in r.content.decode()
    assert not QuotaApplication.objects.exists()
    alice.post(
        reverse("vouchers:quota_apply"),
        team | {"team_in_incubator": "on", "team_core_members": "3"},
    )
    app = QuotaApplication.objects.get()
    login(staff_zhang).post(
        reverse("vouchers:quota_decide", args=[app.pk]),
        {"decision": "approve", "amount": "20000", "idempotency_key": "page-team"},
    )
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "10000"), actor=ent_alice, idempotency_key="team"
    )
    assert order.subsidy_amount > 0
    assert selectors.quota_balance(prog, ent_alice.enterprise) == 20000 - order.subsidy_amount


def test_a_refusal_is_shown_and_changes_nothing(prog, staff_zhang, ent_alice):
    r = login(ent_alice).post(
        reverse("vouchers:quota_apply"),
        {"program": prog.pk, "amount": "-5", "applicant_type": "enterprise"},
        follow=True,
    )
    assert "金额须大于零" in r.content.decode()
    assert not QuotaApplication.objects.exists()


def test_enterprise_b_gets_404_for_as_order_pages_and_actions(ent_bob, applied):
    bob = login(ent_bob)
    for name in ("vouchers:order", "vouchers:order_delivery_file"):
        assert bob.get(reverse(name, args=[applied.pk])).status_code == 404
    for name in (
        "vouchers:order_apply",
        "vouchers:order_cancel",
        "vouchers:order_deliver",
        "vouchers:order_claim",
    ):
        assert (
            bob.post(reverse(name, args=[applied.pk]), {"idempotency_key": "evil"}).status_code
            == 404
        )
    applied.refresh_from_db()
    assert applied.status == "voucher_applied"


def test_institution_x_gets_404_for_ys_orders(inst_other, other_lab, applied):
    other = login(inst_other)
    assert other.get(reverse("vouchers:order", args=[applied.pk])).status_code == 404
    assert (
        other.post(
            reverse("vouchers:order_deliver", args=[applied.pk]), {"file": f.pdf()}
        ).status_code
        == 404
    )
    assert other.post(reverse("vouchers:order_claim", args=[applied.pk])).status_code == 404


def test_enterprise_b_cannot_decide_or_read_the_ledger(prog, ent_alice, ent_bob, inst_lab, applied):
    app = services.quota_apply(
        program=prog, enterprise=ent_alice.enterprise, actor=ent_alice, amount="5"
    )
    for user in (ent_bob, inst_lab):
        client = login(user)
        assert client.post(
            reverse("vouchers:quota_decide", args=[app.pk]),
            {"decision": "approve", "amount": "5", "idempotency_key": "e"},
        ).status_code in (403, 404)
        for name in (
            "vouchers:program",
            "vouchers:ledger",
            "vouchers:program_chart",
            "vouchers:program_export",
        ):
            assert client.get(reverse(name, args=[prog.pk])).status_code == 403
        assert (
            client.post(
                reverse("vouchers:settlement_create", args=[prog.pk]), {"idempotency_key": "e"}
            ).status_code
            == 403
        )
        assert client.post(reverse("vouchers:program_expire", args=[prog.pk])).status_code == 403
        assert client.post(reverse("vouchers:program_create"), {}).status_code == 403
    assert QuotaApplication.objects.get(pk=app.pk).status == "submitted"


def test_auditor_reads_the_ledger_but_cannot_act(prog, auditor_li, applied):
    auditor = login(auditor_li)
    page = auditor.get(reverse("vouchers:ledger", args=[prog.pk])).content.decode()
    assert "平衡" in page and "订单用券" in page
    program = auditor.get(reverse("vouchers:program", args=[prog.pk])).content.decode()
    assert prog.budget >= 1000 and f"¥{prog.budget:,}" in program  # 1,000,000.00, as people read it
    assert auditor.get(reverse("vouchers:order", args=[applied.pk])).status_code == 200
    assert (
        auditor.post(
            reverse("vouchers:order_apply", args=[applied.pk]), {"idempotency_key": "a"}
        ).status_code
        == 403
    )
    assert (
        auditor.post(
            reverse("vouchers:settlement_create", args=[prog.pk]), {"idempotency_key": "a"}
        ).status_code
        == 403
    )


def test_staff_create_a_program_from_the_page(staff_zhang):
    f.category()
    r = login(staff_zhang).post(
        reverse("vouchers:program_create"),
        {
            "idempotency_key": "page-p",
            "year": 2026,
            "name": "2026年科技服务券",
            "budget": "3740000",
            "per_enterprise_cap": "300000",
            "per_team_cap": "50000",
            "valid_from": "2026-01-01",
            "valid_until": "2026-12-31",
            "categories": [f.category().pk],
        },
        follow=True,
    )
    assert "项目已创建" in r.content.decode()
    from kechuang.vouchers.models import Program

    assert selectors.program_balances(Program.objects.get())["unallocated"] == 3740000


@pytest.mark.parametrize("categories", [["9223372036854775808"], ["9" * 5000], ["-1"], ["abc"]])
def test_a_category_id_no_column_can_hold_is_a_form_error_not_a_crash(staff_zhang, categories):
    f.category()
    r = login(staff_zhang).post(
        reverse("vouchers:program_create"),
        {
            "idempotency_key": "page-q", "year": 2026, "name": "x", "budget": "1",
            "per_enterprise_cap": "1", "per_team_cap": "1", "valid_from": "2026-01-01",
            "valid_until": "2026-12-31", "categories": categories,
        },
    )
    assert r.status_code == 400 and "categories" in r.context["program_form"].errors
    assert 'value="2026-12-31"' in r.content.decode(), "what was typed is kept"
    from kechuang.vouchers.models import Program

    assert not Program.objects.exists()
