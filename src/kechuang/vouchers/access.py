"""Who may see and do what with vouchers. Every view and endpoint calls these.

- Commission staff and admins see everything and take the decisions
  (institutions, quotas, claims, settlement, expiry).
- Auditors see everything, including the ledger and the audit trail, and change nothing.
- An enterprise user sees and acts on their own enterprise's applications,
  quota and orders only.
- An institution user sees their institution's orders, claims and payments and
  acts only on those.

An object the user may not see is *not found* (``Http404``), exactly like an id
that does not exist; a user who may see it but not act gets ``PermissionDenied``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from kechuang.accounts import roles
from kechuang.accounts.models import Role
from kechuang.vouchers import prepared, rows
from kechuang.vouchers.models import (
    Claim,
    Institution,
    InstitutionMember,
    Program,
    QuotaApplication,
    ServiceOrder,
    SettlementBatch,
)


def is_staff(user: Any) -> bool:
    return roles.has_role(user, Role.STAFF, Role.ADMIN)


def is_auditor(user: Any) -> bool:
    return roles.has_role(user, Role.AUDITOR)


def sees_all(user: Any) -> bool:
    return is_staff(user) or is_auditor(user)


def is_enterprise_user(user: Any) -> bool:
    return roles.has_ability(user, "own_enterprise")


def is_institution_user(user: Any) -> bool:
    return roles.has_role(user, Role.INSTITUTION)


def institution_of(user: Any) -> Institution | None:
    """The institution an institution user acts for (None until they apply)."""
    if not is_institution_user(user):
        return None
    member = InstitutionMember.objects.filter(user=user).select_related("institution").first()
    return member.institution if member else None


def acts_for(user: Any, enterprise: Any) -> bool:
    return is_enterprise_user(user) and user.enterprise_id == enterprise.pk


def require_staff(user: Any) -> None:
    if not is_staff(user):
        raise PermissionDenied("commission staff only")


def require_ledger_reader(user: Any) -> None:
    if not sees_all(user):
        raise PermissionDenied("staff and auditors only")


def require_signed_in(user: Any) -> None:
    if roles.role_of(user) is None:
        raise PermissionDenied("sign in")


def orders_visible_to(user: Any) -> QuerySet[ServiceOrder]:
    qs = ServiceOrder.objects.select_related("enterprise", "institution", "offering", "program")
    if sees_all(user):
        return qs
    if is_enterprise_user(user):
        return qs.filter(enterprise_id=user.enterprise_id)
    inst = institution_of(user)
    if inst is not None:
        return qs.filter(institution=inst)
    return qs.none()


def applications_visible_to(user: Any) -> QuerySet[QuotaApplication]:
    qs = QuotaApplication.objects.select_related("enterprise", "program")
    if sees_all(user):
        return qs
    if is_enterprise_user(user):
        return qs.filter(enterprise_id=user.enterprise_id)
    return qs.none()


def claims_visible_to(user: Any) -> QuerySet[Claim]:
    qs = Claim.objects.select_related("order", "institution", "order__enterprise")
    if sees_all(user):
        return qs
    inst = institution_of(user)
    if inst is not None:
        return qs.filter(institution=inst)
    return qs.none()


def batches_visible_to(user: Any) -> QuerySet[SettlementBatch]:
    if sees_all(user):
        return SettlementBatch.objects.all()
    inst = institution_of(user)
    if inst is not None:
        return SettlementBatch.objects.filter(claims__institution=inst).distinct()
    return SettlementBatch.objects.none()


def institutions_visible_to(user: Any) -> QuerySet[Institution]:
    if sees_all(user):
        return Institution.objects.all()
    inst = institution_of(user)
    approved = Institution.objects.filter(status=Institution.Status.APPROVED)
    if inst is not None:
        return approved | Institution.objects.filter(pk=inst.pk)
    return approved


def _get(qs: QuerySet, pk: Any) -> Any:
    try:
        return qs.get(pk=int(pk))
    except (TypeError, ValueError, qs.model.DoesNotExist):
        # No message: "not yours" must read exactly like "does not exist".
        raise Http404() from None


def order_for_view(user: Any, pk: Any) -> ServiceOrder:
    return _get(orders_visible_to(user), pk)


def order_for_enterprise(user: Any, pk: Any) -> ServiceOrder:
    """An order its enterprise's user may act on (apply vouchers, cancel), read
    with the enterprise and program those services use (not the institution and
    offering: one join less each on the busiest write, issue 6)."""
    if not is_enterprise_user(user):
        # Staff, auditors and institutions: not found, or found and refused.
        order_for_view(user, pk)
        raise PermissionDenied("the enterprise's own users only")
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404() from None
    if not 0 < pk < 2**63:  # beyond a bigint: no such order (the database would refuse)
        raise Http404()
    # The user's own enterprise only: another's order reads as not found.
    with connection.cursor() as cur:
        prepared.execute(
            cur, _order_with_program_sql(), {"pk": pk, "enterprise": user.enterprise_id}
        )
        row = cur.fetchone()
    if row is None:
        raise Http404()
    split = len(ServiceOrder._meta.concrete_fields)
    order = rows.instance(ServiceOrder, row[:split])
    order.program = rows.instance(Program, row[split:])
    order.enterprise = user.enterprise
    return order


@cache
def _order_with_program_sql() -> str:
    # Plain SQL (issue 6): the ORM compiling this join cost the API more CPU
    # than the rest of the lookup.
    qn = connection.ops.quote_name
    return (
        f"SELECT {rows.columns(ServiceOrder, 'o')}, {rows.columns(Program, 'p')}"
        f" FROM {qn(ServiceOrder._meta.db_table)} o"
        f" JOIN {qn(Program._meta.db_table)} p ON p.id = o.program_id"
        " WHERE o.id = %(pk)s AND o.enterprise_id = %(enterprise)s"
    )


def order_for_institution(user: Any, pk: Any) -> ServiceOrder:
    """An order its institution's user may act on (deliver, claim)."""
    order = order_for_view(user, pk)
    if institution_of(user) != order.institution:
        raise PermissionDenied("the institution's own users only")
    return order


def application_for_view(user: Any, pk: Any) -> QuotaApplication:
    return _get(applications_visible_to(user), pk)


def claim_for_view(user: Any, pk: Any) -> Claim:
    return _get(claims_visible_to(user), pk)


def batch_for_view(user: Any, pk: Any) -> SettlementBatch:
    return _get(batches_visible_to(user), pk)


def institution_for_view(user: Any, pk: Any) -> Institution:
    return _get(institutions_visible_to(user), pk)
