"""Claims and settlement: institutions claim delivered orders, staff approve, reject and pay."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from kechuang.accounts.services import audit_record
from kechuang.errors import KechuangError
from kechuang.vouchers import access, ledger
from kechuang.vouchers.models import Claim, LedgerAccount, Program, ServiceOrder, SettlementBatch
from kechuang.vouchers.services._common import ZERO, _record_rejection
from kechuang.vouchers.services.ledger_accounts import _account


def claim_submit(*, order: ServiceOrder, actor: Any) -> Claim:
    """The institution claims the voucher share of a delivered order."""
    if access.institution_of(actor) != order.institution:
        raise PermissionDenied("not this institution")
    with transaction.atomic():
        # Two claims for one order submitted at once.
        order = ServiceOrder.objects.select_for_update().get(pk=order.pk)
        if order.status != ServiceOrder.Status.DELIVERED:
            raise KechuangError(
                "只能对已交付的订单申请兑付 / only delivered orders can be claimed", "order"
            )
        amount = ledger.balances([order.account])[order.account.pk]
        claim = Claim.objects.create(
            order=order, institution=order.institution, amount=amount, submitted_by=actor
        )
        order.status = ServiceOrder.Status.CLAIMED
        order.save(update_fields=["status"])
        audit_record(
            actor=actor,
            action="voucher.claim_submit",
            obj_type="voucher_claim",
            obj_id=claim.pk,
            before=None,
            after={"order": order.pk, "amount": amount},
        )
    return claim


def claim_approve(*, claim: Claim, actor: Any, idempotency_key: str) -> Claim:
    """Approve a claim: the order's commitment becomes payable to the institution."""
    access.require_staff(actor)
    req = ledger.request_hash({"op": "claim_approve", "claim": claim.pk})
    if ledger.find(idempotency_key, req) is not None:
        return Claim.objects.get(pk=claim.pk)
    with transaction.atomic():
        # Two staff approving the same claim at once would make it payable twice.
        claim = (
            Claim.objects.select_for_update(of=("self",))
            .select_related("order", "order__program")
            .get(pk=claim.pk)
        )
        if ledger.find(idempotency_key, req) is not None:
            return claim
        if claim.status != Claim.Status.SUBMITTED:
            raise KechuangError("该兑付申请已处理 / this claim was already decided", "claim")
        order = claim.order
        payable = _account(order.program, LedgerAccount.Kind.PAYABLE, institution=claim.institution)
        tx = ledger.post(
            legs=[ledger.debit(payable, claim.amount), ledger.credit(order.account, claim.amount)],
            idempotency_key=idempotency_key,
            actor=actor,
            req_hash=req,
            memo=f"兑付批准 / claim #{claim.pk} approved",
        )
        claim.status = Claim.Status.APPROVED
        claim.decided_by = actor
        claim.decided_at = timezone.now()
        claim.save(update_fields=["status", "decided_by", "decided_at"])
        ServiceOrder.objects.filter(pk=order.pk).update(status=ServiceOrder.Status.REDEEMED)
        audit_record(
            actor=actor,
            action="voucher.claim_approve",
            obj_type="voucher_claim",
            obj_id=claim.pk,
            before={"status": "submitted"},
            after={"status": "approved", "amount": claim.amount, "transaction": tx.pk},
        )
    return claim


def claim_reject(*, claim: Claim, actor: Any, reason: str) -> Claim:
    """Reject a claim with a reason; the money stays committed to the order, which
    returns to 'delivered' so the institution can correct and claim again."""
    access.require_staff(actor)
    if not reason.strip():
        raise KechuangError("驳回须说明理由 / a rejection needs a reason", "reason")
    with transaction.atomic():
        claim = Claim.objects.select_for_update().get(pk=claim.pk)
        if claim.status != Claim.Status.SUBMITTED:
            raise KechuangError("该兑付申请已处理 / this claim was already decided", "claim")
        ServiceOrder.objects.filter(pk=claim.order_id).update(status=ServiceOrder.Status.DELIVERED)
        _record_rejection(
            claim,
            status=Claim.Status.REJECTED,
            actor=actor,
            reason=reason,
            action="voucher.claim_reject",
            obj_type="voucher_claim",
        )
    return claim


def settlement_batch_create(
    *, program: Program, actor: Any, idempotency_key: str
) -> SettlementBatch:
    """Pay every approved, unbatched claim of the program in one batch: one
    transaction moving payable → paid per institution; the claims and their
    orders are marked paid. The batch's payment file is ``selectors.settlement_workbook``."""
    access.require_staff(actor)
    req = ledger.request_hash({"op": "settlement_batch_create", "program": program.pk})
    existing = ledger.find(idempotency_key, req)
    if existing is not None:
        return SettlementBatch.objects.get(transaction=existing)
    with transaction.atomic():
        # Two batches created at once would both pick up the same approved claims.
        claims = list(
            Claim.objects.select_for_update()
            .filter(order__program=program, status=Claim.Status.APPROVED, batch__isnull=True)
            .order_by("pk")
        )
        existing = ledger.find(idempotency_key, req)
        if existing is not None:
            return SettlementBatch.objects.get(transaction=existing)
        if not claims:
            raise KechuangError("没有待支付的已批准兑付 / no approved claims to pay", "program")
        per_inst: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for c in claims:
            per_inst[c.institution_id] += c.amount
        legs = []
        for inst_id in sorted(per_inst):
            payable = _account(program, LedgerAccount.Kind.PAYABLE, institution_id=inst_id)
            paid = _account(program, LedgerAccount.Kind.PAID, institution_id=inst_id)
            legs += [
                ledger.debit(paid, per_inst[inst_id]),
                ledger.credit(payable, per_inst[inst_id]),
            ]
        total = sum(per_inst.values(), ZERO)
        tx = ledger.post(
            legs=legs,
            idempotency_key=idempotency_key,
            actor=actor,
            req_hash=req,
            memo=f"结算支付 / settlement of {len(claims)} claims",
        )
        batch = SettlementBatch.objects.create(
            program=program, total=total, created_by=actor, transaction=tx
        )
        Claim.objects.filter(pk__in=[c.pk for c in claims]).update(
            status=Claim.Status.PAID, batch=batch
        )
        ServiceOrder.objects.filter(claims__in=[c.pk for c in claims]).update(
            status=ServiceOrder.Status.PAID
        )
        audit_record(
            actor=actor,
            action="voucher.settlement_batch_create",
            obj_type="voucher_settlement_batch",
            obj_id=batch.pk,
            before=None,
            after={"claims": [c.pk for c in claims], "total": total, "transaction": tx.pk},
        )
    return batch
