"""Services: the life of a voucher, and every refusal changing nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from kechuang import rules
from kechuang.accounts.models import AuditLog
from kechuang.errors import KechuangError
from kechuang.vouchers import ledger, selectors, services
from kechuang.vouchers.models import (
    Claim,
    Institution,
    LedgerTransaction,
    Program,
    QuotaApplication,
    ServiceOrder,
)
from kechuang.vouchers.services import orders
from kechuang.vouchers.tests import factories as f


def ratio_today() -> Decimal:
    entry = rules.get_policy("voucher").parameters["district_ratio"].at(f.TODAY)
    return Decimal(entry.value.numerator) / Decimal(entry.value.denominator)


def snapshot(prog):
    return (selectors.program_balances(prog), LedgerTransaction.objects.count())


def test_quota_approval_issues_quota_from_unallocated(prog, staff_zhang, ent_alice):
    f.issue(prog, staff_zhang, ent_alice, "80000.00")
    b = selectors.program_balances(prog)
    assert b["quota"] == Decimal("80000.00")
    assert b["unallocated"] == prog.budget - Decimal("80000.00")
    assert selectors.quota_balance(prog, ent_alice.enterprise) == Decimal("80000.00")
    assert selectors.budget_identity_holds(prog)


def test_staff_may_approve_less_than_requested(prog, staff_zhang, ent_alice):
    app = services.quota_apply(
        program=prog,
        enterprise=ent_alice.enterprise,
        actor=ent_alice,
        amount="100000",
        applicant_facts=f.ELIGIBLE,
    )
    services.quota_approve(
        application=app, actor=staff_zhang, amount="60000.50", idempotency_key="a1"
    )
    app.refresh_from_db()
    assert app.approved_amount == Decimal("60000.50")
    assert selectors.quota_balance(prog, ent_alice.enterprise) == Decimal("60000.50")


def test_it_rejects_approval_above_the_program_cap(prog, staff_zhang, ent_alice):
    # The program's own cap (data, 200,000 here) is stricter than the policy's.
    assert prog.per_enterprise_cap < services.policy_annual_cap(
        "enterprise", prog.scheme, prog.valid_from
    )
    f.issue(prog, staff_zhang, ent_alice, "150000")
    app = services.quota_apply(
        program=prog,
        enterprise=ent_alice.enterprise,
        actor=ent_alice,
        amount="60000",
        applicant_facts=f.ELIGIBLE,
    )
    before = snapshot(prog)
    with pytest.raises(KechuangError, match="cap"):
        services.quota_approve(
            application=app, actor=staff_zhang, amount="60000", idempotency_key="a2"
        )
    assert snapshot(prog) == before


def test_the_policy_cap_applies_when_the_program_cap_is_higher(staff_zhang, ent_alice):
    policy_cap = services.policy_annual_cap("enterprise", "district_service_voucher", f.TODAY)
    prog = f.program(
        staff_zhang, budget=str(policy_cap * 4), per_enterprise_cap=str(policy_cap * 2)
    )
    assert services.quota_cap(prog, "enterprise") == policy_cap
    app = services.quota_apply(
        program=prog,
        enterprise=ent_alice.enterprise,
        actor=ent_alice,
        amount=str(policy_cap + 1),
        applicant_facts=f.ELIGIBLE,
    )
    with pytest.raises(KechuangError, match="cap"):
        services.quota_approve(
            application=app, actor=staff_zhang, amount=str(policy_cap + 1), idempotency_key="a3"
        )


def test_it_rejects_approval_above_the_remaining_budget(staff_zhang, ent_alice, ent_bob):
    prog = f.program(staff_zhang, budget="100000")
    f.issue(prog, staff_zhang, ent_alice, "70000")
    app = services.quota_apply(
        program=prog,
        enterprise=ent_bob.enterprise,
        actor=ent_bob,
        amount="40000",
        applicant_facts=f.ELIGIBLE,
    )
    with pytest.raises(KechuangError, match="budget"):
        services.quota_approve(
            application=app, actor=staff_zhang, amount="40000", idempotency_key="a4"
        )
    assert selectors.program_balances(prog)["unallocated"] == Decimal("30000.00")


@pytest.mark.parametrize("amount", ["0", "-1", "10.001", "abc", "", "1e999999999", "-1e999999999"])
def test_it_rejects_bad_amounts_with_a_clear_message(prog, ent_alice, amount):
    with pytest.raises(KechuangError) as err:
        services.quota_apply(
            program=prog, enterprise=ent_alice.enterprise, actor=ent_alice, amount=amount
        )
    assert err.value.field == "amount" and err.value.message


def test_an_enterprise_cannot_apply_for_another(prog, ent_alice, bob_corp):
    with pytest.raises(PermissionDenied):
        services.quota_apply(program=prog, enterprise=bob_corp, actor=ent_alice, amount="10")


def test_applying_vouchers_commits_ratio_times_amount(prog, staff_zhang, ent_alice, offer):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = f.order(prog, ent_alice, offer, "40000.01")
    order = services.order_voucher_apply(order=order, actor=ent_alice, idempotency_key="o1")
    expected = (Decimal("40000.01") * ratio_today()).quantize(
        Decimal("0.01"), rounding="ROUND_DOWN"
    )
    assert order.subsidy_amount == expected
    assert order.enterprise_pays == Decimal("40000.01") - expected
    assert order.policy_sha256 == rules.get_policy("voucher").sha256
    assert order.ratio_since is not None and order.ratio_article
    assert Decimal(order.ratio) == ratio_today()
    b = selectors.program_balances(prog)
    assert b["committed"] == expected and b["quota"] == Decimal("100000") - expected
    assert selectors.budget_identity_holds(prog)


def test_the_subsidy_is_limited_by_the_quota_left(prog, staff_zhang, ent_alice, offer):
    f.issue(prog, staff_zhang, ent_alice, "1000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "100000"), actor=ent_alice, idempotency_key="o2"
    )
    assert order.subsidy_amount == Decimal("1000.00")
    assert order.enterprise_pays == Decimal("99000.00")
    assert selectors.quota_balance(prog, ent_alice.enterprise) == 0
    with pytest.raises(KechuangError, match="quota"):
        services.order_voucher_apply(
            order=f.order(prog, ent_alice, offer, "10"), actor=ent_alice, idempotency_key="o3"
        )


def test_applying_twice_with_the_same_key_moves_money_once(prog, staff_zhang, ent_alice, offer):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = f.order(prog, ent_alice, offer, "1000")
    services.order_voucher_apply(order=order, actor=ent_alice, idempotency_key="same")
    # The quota has moved since; the replay still returns the original result.
    again = services.order_voucher_apply(order=order, actor=ent_alice, idempotency_key="same")
    assert again.status == ServiceOrder.Status.VOUCHER_APPLIED
    assert selectors.program_balances(prog)["committed"] == again.subsidy_amount
    with pytest.raises(ledger.IdempotencyConflict):
        services.order_voucher_apply(
            order=order, actor=ent_alice, idempotency_key="same", eligible_amount="500"
        )


def test_applying_vouchers_writes_rows_that_read_back_exactly(prog, staff_zhang, ent_alice, offer):
    # The apply path writes with plain SQL (issue 6): what the ORM reads back must
    # be what the service returned, to the fen, with the audit trail of both writes.
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "1234.56"), actor=ent_alice, idempotency_key="rb"
    )
    stored = ServiceOrder.objects.get(pk=order.pk)
    for field in (*orders._APPLIED_FIELDS, "contract_amount", "order_date"):
        assert getattr(stored, field) == getattr(order, field), field
    assert stored.decision["quota_left_before"] == "100000.00"
    tx = LedgerTransaction.objects.get(idempotency_key="rb")
    assert tx.actor == ent_alice and tx.program == prog and tx.at is not None
    legs = sorted(tx.entries.values_list("side", "amount", "account__kind"))
    assert legs == [
        ("credit", order.subsidy_amount, "quota"),
        ("debit", order.subsidy_amount, "committed"),
    ]
    assert order.account.kind == "committed" and order.account.program == prog
    posted = AuditLog.objects.get(action="voucher.ledger_post", obj_id=str(tx.pk))
    assert posted.actor == ent_alice
    assert {leg["amount"] for leg in posted.after["legs"]} == {str(order.subsidy_amount)}
    applied = AuditLog.objects.get(action="voucher.order_voucher_apply", obj_id=str(order.pk))
    assert applied.actor == ent_alice and applied.before == {"status": "draft"}
    assert applied.after["transaction"] == tx.pk
    assert applied.after["subsidy"] == str(order.subsidy_amount)


def test_it_decides_on_the_order_as_locked_not_the_callers_copy(
    prog, staff_zhang, ent_alice, offer
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = f.order(prog, ent_alice, offer, "1000")
    stale = ServiceOrder.objects.select_related("program", "enterprise").get(pk=order.pk)
    applied = services.order_voucher_apply(order=order, actor=ent_alice, idempotency_key="k1")
    # A new instance: the caller's copy is not changed behind its back.
    assert applied is not order and order.status == ServiceOrder.Status.DRAFT
    before = snapshot(prog)
    # Another tab still shows the order as a draft: the row says otherwise.
    with pytest.raises(KechuangError, match="already applied"):
        services.order_voucher_apply(order=stale, actor=ent_alice, idempotency_key="k2")
    assert snapshot(prog) == before


def test_it_reads_the_order_again_when_the_callers_copy_names_another_program(
    prog, staff_zhang, ent_alice, offer
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = f.order(prog, ent_alice, offer, "1000")
    other = f.program(staff_zhang)
    order.program = other  # a copy that does not match the row
    applied = services.order_voucher_apply(order=order, actor=ent_alice, idempotency_key="k3")
    assert applied.program == prog
    assert selectors.program_balances(prog)["committed"] == applied.subsidy_amount
    assert selectors.program_balances(other)["committed"] == 0


def test_it_refuses_an_enterprise_without_quota_in_the_program(prog, staff_zhang, ent_alice, offer):
    order = f.order(prog, ent_alice, offer, "1000")
    before = snapshot(prog)
    with pytest.raises(KechuangError, match="no approved quota"):
        services.order_voucher_apply(order=order, actor=ent_alice, idempotency_key="k4")
    assert snapshot(prog) == before
    assert ServiceOrder.objects.get(pk=order.pk).status == ServiceOrder.Status.DRAFT


def test_it_rejects_another_enterprises_order(prog, staff_zhang, ent_alice, ent_bob, offer):
    f.issue(prog, staff_zhang, ent_bob, "1000")
    order = f.order(prog, ent_alice, offer, "1000")
    with pytest.raises(PermissionDenied):
        services.order_voucher_apply(order=order, actor=ent_bob, idempotency_key="o4")
    assert selectors.program_balances(prog)["committed"] == 0


def test_it_rejects_an_order_with_an_unapproved_institution(
    prog, staff_zhang, ent_alice, inst_other
):
    inst = services.institution_apply(
        actor=inst_other, name="待审机构", credit_code="12310000MB0000099X"
    )
    assert inst.status == Institution.Status.PENDING
    offering = inst.offerings.create(category=f.category(), name="x", price=Decimal("10"))
    with pytest.raises(KechuangError, match="approved"):
        f.order(prog, ent_alice, offering, "1000")
    assert not ServiceOrder.objects.exists()


def test_it_rejects_orders_in_an_expired_program(staff_zhang, ent_alice, offer):
    last_year = f.TODAY.replace(year=f.TODAY.year - 1)
    prog = f.program(
        staff_zhang,
        valid_from=last_year.replace(month=1, day=1),
        valid_until=last_year.replace(month=12, day=31),
    )
    with pytest.raises(KechuangError, match="expired"):
        f.order(prog, ent_alice, offer, "1000", order_date=last_year)


def test_it_rejects_vouchers_for_an_ineligible_applicant(prog, staff_zhang, ent_alice, offer):
    app = services.quota_apply(
        program=prog,
        enterprise=ent_alice.enterprise,
        actor=ent_alice,
        amount="1000",
        applicant_facts={"registered_in_shanghai": True, "is_tsme": False},
    )
    services.quota_approve(application=app, actor=staff_zhang, amount="1000", idempotency_key="a5")
    with pytest.raises(KechuangError, match="enterprise_applicant"):
        services.order_voucher_apply(
            order=f.order(prog, ent_alice, offer, "100"), actor=ent_alice, idempotency_key="o5"
        )


@pytest.mark.parametrize(
    ("facts", "named"),
    [
        ({**f.ELIGIBLE, "team": "n/a"}, "team"),
        ({**f.ELIGIBLE, "registered_in_shanghai": "yes"}, "registered_in_shanghai"),
        ({**f.ELIGIBLE, "team": {"core_members": "３"}}, "team.core_members"),
    ],
)
def test_it_refuses_applicant_facts_the_engine_cannot_read(prog, ent_alice, facts, named):
    with pytest.raises(KechuangError) as caught:
        services.quota_apply(
            program=prog, enterprise=ent_alice.enterprise, actor=ent_alice, amount="1000",
            applicant_facts=facts,
        )
    assert caught.value.field == "applicant_facts" and named in caught.value.message
    assert not QuotaApplication.objects.filter(enterprise=ent_alice.enterprise).exists()


def test_a_stored_fact_the_engine_cannot_read_is_named_not_a_crash(prog, staff_zhang, ent_alice, offer):
    # Facts stored before they were checked on entry: the order is refused, naming them.
    f.issue(prog, staff_zhang, ent_alice, "1000")
    QuotaApplication.objects.filter(enterprise=ent_alice.enterprise).update(
        applicant_facts={**f.ELIGIBLE, "is_tsme": "yes"}
    )
    before = snapshot(prog)
    with pytest.raises(KechuangError, match="is_tsme"):
        services.order_voucher_apply(
            order=f.order(prog, ent_alice, offer, "100"), actor=ent_alice, idempotency_key="o9"
        )
    assert snapshot(prog) == before


def test_delivery_claim_approval_and_settlement(prog, staff_zhang, ent_alice, inst_lab, offer):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o6"
    )
    subsidy = order.subsidy_amount
    order = services.order_deliver(order=order, actor=inst_lab, upload=f.pdf())
    assert order.status == "delivered" and order.delivery_file_type == "pdf"
    claim = services.claim_submit(order=order, actor=inst_lab)
    assert claim.amount == subsidy
    services.claim_approve(claim=claim, actor=staff_zhang, idempotency_key="c1")
    assert selectors.program_balances(prog)["payable"] == subsidy
    batch = services.settlement_batch_create(program=prog, actor=staff_zhang, idempotency_key="s1")
    assert batch.total == subsidy
    b = selectors.program_balances(prog)
    assert b["paid"] == subsidy and b["payable"] == 0 and b["committed"] == 0
    assert Claim.objects.get().status == "paid"
    assert ServiceOrder.objects.get().status == "paid"
    assert selectors.budget_identity_holds(prog)
    import io

    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(selectors.settlement_workbook(batch)))
    assert (
        wb["支付清单"]["E3"].value == float(subsidy)
        or Decimal(str(wb["支付清单"]["E3"].value)) == subsidy
    )
    # Replaying the batch request pays nothing twice.
    assert (
        services.settlement_batch_create(program=prog, actor=staff_zhang, idempotency_key="s1").pk
        == batch.pk
    )


def test_it_rejects_a_claim_for_an_undelivered_order(prog, staff_zhang, ent_alice, inst_lab, offer):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o7"
    )
    with pytest.raises(KechuangError, match="delivered"):
        services.claim_submit(order=order, actor=inst_lab)
    assert not Claim.objects.exists()


def test_another_institution_cannot_claim_or_deliver(
    prog, staff_zhang, ent_alice, inst_other, other_lab, offer
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o8"
    )
    with pytest.raises(PermissionDenied):
        services.order_deliver(order=order, actor=inst_other, upload=f.pdf())
    with pytest.raises(PermissionDenied):
        services.claim_submit(order=order, actor=inst_other)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("report.pdf", b"MZ\x90\x00 not a pdf", "PDF"),
        ("report.docx", b"PK\x03\x04 word", "OFD"),
        ("empty.pdf", b"", "empty"),
    ],
)
def test_it_rejects_bad_delivery_files(
    prog, staff_zhang, ent_alice, inst_lab, offer, name, content, message
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o9"
    )
    with pytest.raises(KechuangError, match=message):
        services.order_deliver(
            order=order, actor=inst_lab, upload=SimpleUploadedFile(name, content)
        )
    order.refresh_from_db()
    assert order.status == "voucher_applied"


def test_it_rejects_an_oversized_delivery_file(
    prog, staff_zhang, ent_alice, inst_lab, offer, monkeypatch
):
    from kechuang.vouchers import uploads

    monkeypatch.setattr(uploads, "MAX_BYTES", 10)
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o10"
    )
    with pytest.raises(KechuangError, match="MB"):
        services.order_deliver(order=order, actor=inst_lab, upload=f.pdf())


def test_a_rejected_claim_needs_a_reason_and_can_be_claimed_again(
    prog, staff_zhang, ent_alice, inst_lab, offer
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o11"
    )
    services.order_deliver(order=order, actor=inst_lab, upload=f.pdf())
    claim = services.claim_submit(order=order, actor=inst_lab)
    with pytest.raises(KechuangError, match="reason"):
        services.claim_reject(claim=claim, actor=staff_zhang, reason=" ")
    services.claim_reject(claim=claim, actor=staff_zhang, reason="发票抬头不符")
    assert selectors.program_balances(prog)["committed"] == order.subsidy_amount
    again = services.claim_submit(order=order, actor=inst_lab)
    assert again.status == "submitted"


def test_cancelling_an_order_returns_the_commitment_to_the_quota(
    prog, staff_zhang, ent_alice, offer
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o12"
    )
    services.order_cancel(order=order, actor=ent_alice, idempotency_key="x12")
    assert selectors.quota_balance(prog, ent_alice.enterprise) == Decimal("100000.00")
    assert selectors.program_balances(prog)["committed"] == 0


def test_expiry_returns_unused_quota_to_the_budget_once(
    prog, staff_zhang, ent_alice, ent_bob, offer
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    f.issue(prog, staff_zhang, ent_bob, "5000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o13"
    )
    with pytest.raises(KechuangError, match="still valid"):
        services.quota_expire(program=prog, actor=staff_zhang)
    after_end = prog.valid_until + dt.timedelta(days=1)
    posted = services.quota_expire(program=prog, actor=staff_zhang, today=after_end)
    assert len(posted) == 2
    b = selectors.program_balances(prog)
    assert b["quota"] == 0 and b["committed"] == order.subsidy_amount
    assert b["unallocated"] == prog.budget - order.subsidy_amount
    audits = AuditLog.objects.filter(action="voucher.quota_expire").count()
    assert audits == 1
    assert services.quota_expire(program=prog, actor=staff_zhang, today=after_end) == []
    assert selectors.budget_identity_holds(prog)
    # A daily run that moves nothing records nothing.
    assert AuditLog.objects.filter(action="voucher.quota_expire").count() == audits


def test_no_client_can_take_the_key_the_year_end_expiry_posts_under(
    prog, staff_zhang, ent_alice, offer
):
    f.issue(prog, staff_zhang, ent_alice, "10000")
    account = services.quota_account(prog, ent_alice.enterprise)
    order = f.order(prog, ent_alice, offer, "2000")
    with pytest.raises(KechuangError, match="reserved"):
        services.order_voucher_apply(
            order=order, actor=ent_alice,
            idempotency_key=f"{ledger.SYSTEM_PREFIX}expire:{prog.pk}:{account.pk}",
        )
    after_end = prog.valid_until + dt.timedelta(days=1)
    assert len(services.quota_expire(program=prog, actor=staff_zhang, today=after_end)) == 1
    assert selectors.program_balances(prog)["quota"] == 0


def test_an_order_cancelled_after_the_program_ended_returns_money_to_the_budget(
    prog, staff_zhang, ent_alice, offer
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o17"
    )
    # The program has ended and the expiry is running: Alice's quota account is already
    # expired, the program not yet marked so, when she cancels.
    after_end = prog.valid_until + dt.timedelta(days=1)
    services.quota_expire(program=prog, actor=staff_zhang, today=after_end)
    Program.objects.filter(pk=prog.pk).update(expired_at=None)
    prog.refresh_from_db()
    services.order_cancel(order=order, actor=ent_alice, idempotency_key="c17", today=after_end)
    # Nothing is left stranded in a quota nobody may spend, and a rerun finds nothing.
    assert services.quota_expire(program=prog, actor=staff_zhang, today=after_end) == []
    b = selectors.program_balances(prog)
    assert b["quota"] == 0 and b["committed"] == 0
    assert b["unallocated"] == prog.budget
    assert selectors.budget_identity_holds(prog)


def test_every_action_is_audited_with_who(prog, staff_zhang, ent_alice, offer):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = f.order(prog, ent_alice, offer, "20000")
    services.order_voucher_apply(order=order, actor=ent_alice, idempotency_key="o14")
    actions = set(AuditLog.objects.values_list("action", "actor__username"))
    assert ("voucher.quota_apply", "ent_alice") in actions
    assert ("voucher.quota_approve", "staff_zhang") in actions
    assert ("voucher.order_voucher_apply", "ent_alice") in actions


def test_statistics_by_street_and_institution(
    prog, staff_zhang, ent_alice, ent_bob, inst_lab, offer
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    f.issue(prog, staff_zhang, ent_bob, "50000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o15"
    )
    services.order_deliver(order=order, actor=inst_lab, upload=f.pdf())
    services.claim_approve(
        claim=services.claim_submit(order=order, actor=inst_lab),
        actor=staff_zhang,
        idempotency_key="c15",
    )
    stats = selectors.program_statistics(prog)
    assert stats["enterprises_issued"] == 2
    assert stats["amount_issued"] == Decimal("150000.00")
    assert stats["amount_redeemed"] == order.subsidy_amount
    assert stats["redemption_rate"] == (order.subsidy_amount / Decimal("150000")).quantize(
        Decimal("0.0001")
    )
    streets = {r["key"]: r for r in stats["by_street"]}
    assert streets["长风新村街道"]["redeemed"] == order.subsidy_amount
    assert streets["桃浦镇"]["issued"] == Decimal("50000.00")
    assert stats["by_institution"][0]["key"] == offer.institution.name
    assert selectors.statistics_chart_png(stats).startswith(b"\x89PNG")
    assert selectors.statistics_workbook(stats, prog)[:2] == b"PK"


def test_statistics_by_period_count_a_claim_once_when_its_order_had_a_rejected_one(
    prog, staff_zhang, ent_alice, inst_lab, offer
):
    f.issue(prog, staff_zhang, ent_alice, "100000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "20000"), actor=ent_alice, idempotency_key="o16"
    )
    services.order_deliver(order=order, actor=inst_lab, upload=f.pdf())
    first = services.claim_submit(order=order, actor=inst_lab)
    services.claim_reject(claim=first, actor=staff_zhang, reason="发票缺失 invoice missing")
    services.claim_approve(
        claim=services.claim_submit(order=order, actor=inst_lab),
        actor=staff_zhang,
        idempotency_key="c16",
    )
    today = timezone.localdate()
    for period in ((None, None), (today, None), (None, today), (today, today)):
        stats = selectors.program_statistics(prog, *period)
        assert stats["amount_redeemed"] == order.subsidy_amount, period
        assert stats["by_institution"][0]["redeemed"] == order.subsidy_amount, period
    assert selectors.program_statistics(prog, today + dt.timedelta(days=1))["amount_redeemed"] == 0


def test_a_rejected_application_holds_neither_its_user_nor_its_credit_code(staff_zhang, inst_other):
    from kechuang.testing import make_user

    code = "12310000MB0000077X"
    squatter = services.institution_apply(actor=inst_other, name="冒名机构", credit_code=code)
    services.institution_decide(
        institution=squatter, actor=staff_zhang, approve=False, reason="非本机构"
    )
    real_user = make_user("inst_real", "institution")
    real = services.institution_apply(actor=real_user, name="真实机构", credit_code=code)
    assert real.status == Institution.Status.PENDING and real.credit_code == code
    assert not Institution.objects.filter(pk=squatter.pk).exists()
    # The rejected user may apply again, for another institution.
    again = services.institution_apply(
        actor=inst_other, name="另一机构", credit_code="12310000MB0000085R"
    )
    assert again.status == Institution.Status.PENDING
    assert AuditLog.objects.filter(action="voucher.institution_release").count() == 1
    with pytest.raises(KechuangError, match="already"):
        services.institution_apply(actor=real_user, name="重复", credit_code="12310000MB0000093X")
