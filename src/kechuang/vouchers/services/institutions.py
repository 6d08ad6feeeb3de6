"""Service institutions: joining the platform, its decision, their offerings."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from kechuang.accounts.services import audit_record
from kechuang.errors import KechuangError, checked_text
from kechuang.vouchers import access
from kechuang.vouchers.models import Institution, InstitutionMember, Offering, ServiceCategory
from kechuang.vouchers.services._common import amount_in


def institution_apply(
    *,
    actor: Any,
    name: str,
    credit_code: str,
    contact: str = "",
    bank_name: str = "",
    bank_account: str = "",
) -> Institution:
    """An institution user applies for their institution to join the platform."""
    if not access.is_institution_user(actor):
        raise PermissionDenied("institution users only")
    if InstitutionMember.objects.filter(user=actor).exclude(
        institution__status=Institution.Status.REJECTED
    ).exists():
        raise KechuangError(
            "该用户已属于一家服务机构 / this user already belongs to an institution"
        )
    code = (credit_code or "").strip().upper()
    name, contact = (name or "").strip(), (contact or "").strip()
    bank_name = (bank_name or "").strip()
    bank_account = "".join((bank_account or "").split())
    for field, value in (("name", name), ("contact", contact), ("bank_name", bank_name)):
        checked_text(Institution, field, value)
    if bank_account and not (bank_account.isdigit() and 8 <= len(bank_account) <= 30):
        # It goes into the payment file finance staff pay from: digits only.
        raise KechuangError(
            "银行账号应为8–30位数字 / bank account: 8-30 digits", "bank_account"
        )
    if not name or len(code) != 18:
        raise KechuangError(
            "请填写机构名称和18位统一社会信用代码 / name and 18-character credit code required",
            "credit_code",
        )
    if Institution.objects.filter(credit_code=code).exclude(
        status=Institution.Status.REJECTED
    ).exists():
        raise KechuangError("该机构已登记 / this institution is already registered", "credit_code")
    with transaction.atomic():
        # A rejected application holds neither its user nor its credit code: the user may
        # apply again, and a code someone else applied with in vain goes to whoever
        # applies with it next (a rejected institution has no offering, order or claim).
        rejected = Institution.objects.filter(
            Q(credit_code=code) | Q(institutionmember__user=actor),
            status=Institution.Status.REJECTED,
        ).values_list("pk", flat=True)
        # Locked by id: PostgreSQL takes no FOR UPDATE over the join's DISTINCT.
        for old in Institution.objects.select_for_update().filter(
            pk__in=set(rejected), status=Institution.Status.REJECTED
        ):
            audit_record(
                actor=actor,
                action="voucher.institution_release",
                obj_type="voucher_institution",
                obj_id=old.pk,
                before={"name": old.name, "credit_code": old.credit_code, "status": old.status,
                        "reason": old.decision_reason},
                after=None,
            )
            InstitutionMember.objects.filter(institution=old).delete()
            old.delete()
        inst = Institution.objects.create(
            name=name,
            credit_code=code,
            contact=contact,
            bank_name=bank_name,
            bank_account=bank_account,
        )
        InstitutionMember.objects.create(user=actor, institution=inst)
        audit_record(
            actor=actor,
            action="voucher.institution_apply",
            obj_type="voucher_institution",
            obj_id=inst.pk,
            before=None,
            after={"name": inst.name, "credit_code": code},
        )
    return inst


def institution_decide(
    *, institution: Institution, actor: Any, approve: bool, reason: str = ""
) -> Institution:
    access.require_staff(actor)
    if not approve and not reason.strip():
        raise KechuangError("驳回须说明理由 / a rejection needs a reason", "reason")
    with transaction.atomic():
        # Two staff deciding the same application at once: the second sees the first's decision.
        inst = Institution.objects.select_for_update().get(pk=institution.pk)
        if inst.status != Institution.Status.PENDING:
            raise KechuangError("该申请已处理 / this application was already decided")
        inst.status = Institution.Status.APPROVED if approve else Institution.Status.REJECTED
        inst.decision_reason = reason.strip()
        inst.decided_at = timezone.now()
        inst.save(update_fields=["status", "decision_reason", "decided_at"])
        audit_record(
            actor=actor,
            action="voucher.institution_decide",
            obj_type="voucher_institution",
            obj_id=inst.pk,
            before={"status": "pending"},
            after={"status": inst.status, "reason": inst.decision_reason},
        )
    return inst


def offering_create(
    *, institution: Institution, actor: Any, category: ServiceCategory, name: str, price: Any
) -> Offering:
    if access.institution_of(actor) != institution and not access.is_staff(actor):
        raise PermissionDenied("not this institution")
    if institution.status != Institution.Status.APPROVED:
        raise KechuangError("机构尚未通过审核 / the institution is not approved", "institution")
    price = amount_in(price, "price")
    name = checked_text(Offering, "name", (name or "").strip())
    if not name:
        raise KechuangError("请填写服务名称 / a name is required", "name")
    offering = Offering.objects.create(
        institution=institution, category=category, name=name.strip(), price=price
    )
    audit_record(
        actor=actor,
        action="voucher.offering_create",
        obj_type="voucher_offering",
        obj_id=offering.pk,
        before=None,
        after={
            "institution": institution.pk,
            "category": category.code,
            "name": offering.name,
            "price": price,
        },
    )
    return offering
