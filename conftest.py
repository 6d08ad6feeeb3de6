"""Fixtures shared by every test module: the people of kechuang.testing."""

import pytest

from kechuang.testing import (  # noqa: F401
    admin_root,
    alice_corp,
    auditor_li,
    bob_corp,
    browser,
    ent_alice,
    ent_bob,
    expert_wang,
    inst_lab,
    staff_zhang,
)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness protects real passwords; tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
