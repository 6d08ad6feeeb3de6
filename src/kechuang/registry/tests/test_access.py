"""registry.access: the one place that decides who sees and changes which enterprise."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from kechuang.registry import access
from kechuang.registry.models import Enterprise
from kechuang.testing import ALICE_CODE, BOB_CODE


def test_staff_auditors_and_admins_see_every_enterprise(
    staff_zhang, auditor_li, admin_root, alice_corp, bob_corp
):
    for user in (staff_zhang, auditor_li, admin_root):
        assert set(access.enterprises_visible_to(user)) == {alice_corp, bob_corp}


def test_an_enterprise_user_sees_only_their_own(ent_alice, bob_corp):
    assert list(access.enterprises_visible_to(ent_alice)) == [ent_alice.enterprise]
    assert list(access.restrict(ent_alice, Enterprise.objects.all())) == [ent_alice.enterprise]


def test_institutions_and_experts_see_no_registry(inst_lab, expert_wang, alice_corp):
    for user in (inst_lab, expert_wang):
        assert not access.enterprises_visible_to(user).exists()
        with pytest.raises(Http404):
            access.enterprise_for_view(user, ALICE_CODE)


def test_another_enterprise_is_not_found_exactly_like_a_code_that_does_not_exist(
    ent_alice, bob_corp
):
    with pytest.raises(Http404) as other:
        access.enterprise_for_view(ent_alice, BOB_CODE)
    with pytest.raises(Http404) as missing:
        access.enterprise_for_view(ent_alice, "91310107MA1G99999X")
    assert str(other.value) == str(missing.value) == ""


def test_credit_codes_typed_in_lower_case_are_found(staff_zhang, alice_corp):
    assert access.enterprise_for_view(staff_zhang, ALICE_CODE.lower()) == alice_corp


def test_the_auditor_may_read_but_not_edit(auditor_li, alice_corp):
    assert access.enterprise_for_view(auditor_li, ALICE_CODE) == alice_corp
    with pytest.raises(PermissionDenied):
        access.enterprise_for_edit(auditor_li, ALICE_CODE)


def test_an_enterprise_user_edits_their_own_and_cannot_reach_another(ent_alice, bob_corp):
    assert access.enterprise_for_edit(ent_alice, ALICE_CODE) == ent_alice.enterprise
    with pytest.raises(Http404):
        access.enterprise_for_edit(ent_alice, BOB_CODE)


def test_staff_edit_any_enterprise(staff_zhang, alice_corp, bob_corp):
    assert access.can_edit_enterprise(staff_zhang, alice_corp)
    assert access.can_edit_enterprise(staff_zhang, bob_corp)
