"""What each role may do, in one table.

Every page, endpoint and template asks here (through each app's ``access.py``)
instead of comparing role strings itself, so a new role or a changed right is
one line in ``ABILITIES``.
"""

from __future__ import annotations

from typing import Any

from kechuang.accounts.models import Role

#: ability → the roles that have it. Enterprise users' rights over their own
#: enterprise are object-level and live in ``registry.access``.
ABILITIES: dict[str, frozenset[str]] = {
    # See every enterprise (list, search, detail, API).
    "browse_registry": frozenset({Role.STAFF, Role.AUDITOR, Role.ADMIN}),
    # Change any enterprise's data.
    "edit_any_enterprise": frozenset({Role.STAFF, Role.ADMIN}),
    "import_registry": frozenset({Role.STAFF, Role.ADMIN}),
    "export_registry": frozenset({Role.STAFF, Role.AUDITOR, Role.ADMIN}),
    "read_audit_log": frozenset({Role.AUDITOR, Role.ADMIN}),
    # Publish a reform's parameter value as the law in force (staff prepare reforms).
    "publish_parameters": frozenset({Role.ADMIN}),
    # See and edit the one enterprise the user is bound to.
    "own_enterprise": frozenset({Role.ENTERPRISE}),
    # The innovation-voucher pages (each role sees its own part of them).
    "use_vouchers": frozenset(
        {Role.STAFF, Role.ADMIN, Role.AUDITOR, Role.ENTERPRISE, Role.INSTITUTION}
    ),
}


def role_of(user: Any) -> str | None:
    """The user's role, or None for anonymous and deactivated users."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    # A superuser made by createsuperuser keeps the model's default role; they
    # administer the platform whatever that field says.
    if user.is_superuser:
        return Role.ADMIN
    return user.role


def has_role(user: Any, *roles: str) -> bool:
    return role_of(user) in roles


def has_ability(user: Any, ability: str) -> bool:
    if ability not in ABILITIES:
        raise KeyError(f"unknown ability {ability!r}; see kechuang.accounts.roles.ABILITIES")
    role = role_of(user)
    if role is None or role not in ABILITIES[ability]:
        return False
    if ability == "own_enterprise":
        # The model's check constraint binds every enterprise user to one
        # enterprise; still, never treat an unbound one as owning "None".
        return user.enterprise_id is not None
    return True


def role_label(user: Any) -> str:
    role = role_of(user)
    return str(Role(role).label) if role else ""
