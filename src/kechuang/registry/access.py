"""Who may see and change which enterprise. Every registry view and endpoint calls these.

- Commission staff and admins see and edit every enterprise; auditors see every
  enterprise and edit none.
- An enterprise user sees and edits exactly the enterprise they are bound to.
- Service institutions and expert reviewers see no registry data here: their
  access to an enterprise comes through the applications and orders they are
  assigned to, in those apps.

An enterprise the user may not see is *not found* (``Http404``), with the same
answer as a credit code that does not exist, so nobody can probe for which
enterprises are registered. A user who may see an enterprise but not change it
gets ``PermissionDenied`` (403): that reveals nothing they cannot already read.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from kechuang.accounts import roles
from kechuang.registry.models import Enterprise


def enterprises_visible_to(user: Any) -> QuerySet[Enterprise]:
    if roles.has_ability(user, "browse_registry"):
        return Enterprise.objects.all()
    if roles.has_ability(user, "own_enterprise"):
        return Enterprise.objects.filter(pk=user.enterprise_id)
    return Enterprise.objects.none()


def restrict(user: Any, queryset: QuerySet[Enterprise]) -> QuerySet[Enterprise]:
    """``queryset`` narrowed to the enterprises ``user`` may see."""
    if roles.has_ability(user, "browse_registry"):
        return queryset
    if roles.has_ability(user, "own_enterprise"):
        return queryset.filter(pk=user.enterprise_id)
    return queryset.none()


def can_edit_enterprise(user: Any, enterprise: Enterprise) -> bool:
    if roles.has_ability(user, "edit_any_enterprise"):
        return True
    return roles.has_ability(user, "own_enterprise") and user.enterprise_id == enterprise.pk


def enterprise_for_view(user: Any, credit_code: str) -> Enterprise:
    """The enterprise with this credit code if ``user`` may see it, else Http404."""
    enterprise = (
        enterprises_visible_to(user).filter(credit_code=normalize_code(credit_code)).first()
    )
    if enterprise is None:
        # No message: "not yours" must be indistinguishable from "no such code".
        raise Http404()
    return enterprise


def enterprise_for_edit(user: Any, credit_code: str) -> Enterprise:
    """The enterprise if ``user`` may change it; Http404 if they may not even see it."""
    enterprise = enterprise_for_view(user, credit_code)
    if not can_edit_enterprise(user, enterprise):
        raise PermissionDenied("read-only role")
    return enterprise


def require(user: Any, ability: str) -> None:
    """Raise PermissionDenied unless ``user`` has ``ability`` (see accounts.roles.ABILITIES)."""
    if not roles.has_ability(user, ability):
        raise PermissionDenied(ability)


def may_browse(user: Any) -> bool:
    return roles.has_ability(user, "browse_registry")


def normalize_code(credit_code: str) -> str:
    # Credit codes are upper-case; people type them in lower case.
    return (credit_code or "").strip().upper()
