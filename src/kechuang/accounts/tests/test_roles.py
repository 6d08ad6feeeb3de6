import pytest
from django.contrib.auth.models import AnonymousUser

from kechuang.accounts import roles
from kechuang.accounts.models import Role


def test_each_role_has_exactly_its_abilities(
    staff_zhang, ent_alice, inst_lab, expert_wang, auditor_li, admin_root
):
    table = {
        user.username: {a for a in roles.ABILITIES if roles.has_ability(user, a)}
        for user in (staff_zhang, ent_alice, inst_lab, expert_wang, auditor_li, admin_root)
    }
    assert table == {
        "staff_zhang": {
            "browse_registry",
            "edit_any_enterprise",
            "import_registry",
            "export_registry",
            "use_vouchers",
        },
        "ent_alice": {"own_enterprise", "use_vouchers"},
        "inst_lab": {"use_vouchers"},
        "expert_wang": set(),
        "auditor_li": {"browse_registry", "export_registry", "read_audit_log", "use_vouchers"},
        "admin_root": {
            "browse_registry",
            "edit_any_enterprise",
            "import_registry",
            "export_registry",
            "read_audit_log",
            "publish_parameters",
            "use_vouchers",
        },
    }


def test_anonymous_and_deactivated_users_have_no_role(staff_zhang):
    assert roles.role_of(AnonymousUser()) is None
    staff_zhang.is_active = False
    assert not roles.has_ability(staff_zhang, "browse_registry")


def test_a_superuser_is_an_admin_whatever_the_role_field_says(staff_zhang):
    staff_zhang.is_superuser = True
    assert roles.role_of(staff_zhang) == Role.ADMIN


def test_an_unknown_ability_is_a_programming_error(staff_zhang):
    with pytest.raises(KeyError):
        roles.has_ability(staff_zhang, "fly")
