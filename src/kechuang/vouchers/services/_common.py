"""Constants and small helpers shared by every area of the voucher services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone

from kechuang.accounts.services import audit_record
from kechuang.errors import KechuangError
from kechuang.money import parse_yuan

POLICY = "voucher"
#: Which ratio timeline of the voucher policy each scheme reads (the policy's
#: ``ratio`` derivation); used to record the entry behind each subsidy.
RATIO_PARAMETER = {
    "district_service_voucher": "district_ratio",
    "shanghai_municipal": "municipal_ratio",
}
ZERO = Decimal("0.00")


def _today(today: dt.date | None) -> dt.date:
    return today or timezone.localdate()


def amount_in(value: Any, field: str = "amount") -> Decimal:
    """A positive yuan amount with at most two decimals, or a clear refusal."""
    amount = parse_yuan(value, field=field)
    if amount is None:
        raise KechuangError("请填写金额 / an amount is required", field)
    if amount <= 0:
        raise KechuangError("金额须大于零 / the amount must be greater than zero", field)
    if amount >= Decimal("1e12"):
        # DecimalField(max_digits=14, decimal_places=2) holds less than 10^12 yuan.
        raise KechuangError("金额过大 / the amount is too large", field)
    return amount


def _record_rejection(
    obj: Any, *, status: str, actor: Any, reason: str, action: str, obj_type: str
) -> None:
    """Mark a submitted (and locked) application or claim rejected, and audit it."""
    obj.status = status
    obj.reason = reason.strip()
    obj.decided_by = actor
    obj.decided_at = timezone.now()
    obj.save(update_fields=["status", "reason", "decided_by", "decided_at"])
    audit_record(
        actor=actor,
        action=action,
        obj_type=obj_type,
        obj_id=obj.pk,
        before={"status": "submitted"},
        after={"status": "rejected", "reason": obj.reason},
    )
