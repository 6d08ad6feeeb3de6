"""Fixtures shared by every test module: the people of kechuang.testing."""

from kechuang.testing import (  # noqa: F401
    admin_root,
    alice_corp,
    auditor_li,
    bob_corp,
    ent_alice,
    ent_bob,
    expert_wang,
    inst_lab,
    staff_zhang,
)
