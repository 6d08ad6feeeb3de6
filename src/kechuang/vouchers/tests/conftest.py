"""The voucher story: staff_zhang runs this year's program; inst_lab works at an
approved software testing centre (``lab``); ent_alice and ent_bob are two
enterprises with quota. A second institution (``other_lab``) must never touch
the lab's orders."""

from __future__ import annotations

import pytest

from kechuang.accounts.models import Role
from kechuang.testing import make_user
from kechuang.vouchers.tests import factories


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def prog(staff_zhang):
    return factories.program(staff_zhang)


@pytest.fixture
def lab(staff_zhang, inst_lab):
    return factories.institution(staff_zhang, inst_lab)


@pytest.fixture
def inst_other(db):
    return make_user("inst_other", Role.INSTITUTION)


@pytest.fixture
def other_lab(staff_zhang, inst_other):
    return factories.institution(staff_zhang, inst_other, name="另一家检测机构")


@pytest.fixture
def offer(lab, inst_lab):
    return factories.offering(lab, inst_lab)
