"""Fixtures shared by every test module: the people of kechuang.testing."""

import os

import pytest
from hypothesis import settings as hypothesis_settings

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

# The suite decides whether a change lands: the same examples on every run, so a
# verdict never depends on the draw. KECHUANG_HYPOTHESIS=explore draws new ones each run
# (to look for bugs; a failure prints the example to pin as a fixed test).
hypothesis_settings.register_profile("suite", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("KECHUANG_HYPOTHESIS", "suite"))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness protects real passwords; tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
