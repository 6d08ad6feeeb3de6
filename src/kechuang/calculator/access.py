"""Who may run the self-check for which enterprise. Every calculator view and endpoint
of the self-check calls these (the 免申即享 runs have their own checks in their views).

- Commission staff, admins and auditors see the self-check of any enterprise.
- An enterprise user sees only their own enterprise's self-check.
- Anybody, signed in or not, may use the public calculator: it reads no registry data.

An enterprise the user may not see is *not found* (``Http404``), exactly as in the
registry, so nobody can probe which credit codes are registered.
"""

from __future__ import annotations

from typing import Any

from kechuang.accounts import roles
from kechuang.registry import access as registry_access
from kechuang.registry.models import Enterprise


def enterprise_for_selfcheck(user: Any, credit_code: str) -> Enterprise:
    """The enterprise if ``user`` may see its self-check, else Http404."""
    return registry_access.enterprise_for_view(user, credit_code)


def may_check_any_enterprise(user: Any) -> bool:
    return roles.has_ability(user, "browse_registry")


def own_enterprise(user: Any) -> Enterprise | None:
    """The enterprise an enterprise user is bound to (None for everyone else)."""
    if roles.has_ability(user, "own_enterprise"):
        return user.enterprise
    return None
