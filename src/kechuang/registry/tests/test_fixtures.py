from kechuang.accounts.models import Role


def test_the_shared_people_are_bound_to_their_own_enterprises(ent_alice, ent_bob, staff_zhang):
    assert ent_alice.enterprise.name.startswith("上海爱丽丝")
    assert ent_bob.enterprise != ent_alice.enterprise
    assert staff_zhang.role == Role.STAFF and staff_zhang.enterprise is None
