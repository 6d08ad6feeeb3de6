"""Who may do what with 免申即享 runs, offers and reforms.

- Commission staff and admins start, review, confirm and export runs and reforms.
- Only admins publish a reform's parameter value as the law in force.
- Auditors read runs and reforms (and export them); they change nothing.
- An enterprise user sees only its own enterprise's offers and notices; every run
  or reform page refuses them (403): a run lists other enterprises.
An offer of another enterprise is *not found* (404), as in the registry.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from kechuang.accounts import roles
from kechuang.accounts.models import Role
from kechuang.calculator.models_runs import MianshenOffer


def may_manage_runs(user: Any) -> bool:
    return roles.has_role(user, Role.STAFF, Role.ADMIN)


def may_view_runs(user: Any) -> bool:
    return roles.has_role(user, Role.STAFF, Role.ADMIN, Role.AUDITOR)


def require_manage(user: Any) -> None:
    if not may_manage_runs(user):
        raise PermissionDenied("manage 免申即享 runs")


def require_view(user: Any) -> None:
    if not may_view_runs(user):
        raise PermissionDenied("view 免申即享 runs")


def may_publish_parameters(user: Any) -> bool:
    return roles.has_ability(user, "publish_parameters")


def require_publish(user: Any) -> None:
    if not may_publish_parameters(user):
        raise PermissionDenied("publish parameter values (admins only)")


def offer_for_enterprise_user(user: Any, offer_id: int) -> MianshenOffer:
    """The offer if it is for the user's own enterprise, else Http404."""
    if not roles.has_ability(user, "own_enterprise"):
        raise Http404()
    offer = MianshenOffer.objects.filter(pk=offer_id, enterprise_id=user.enterprise_id).first()
    if offer is None:
        raise Http404()
    return offer
