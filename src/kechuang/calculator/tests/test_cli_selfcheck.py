"""``kechuang selfcheck CREDIT_CODE [--as-of] [--lang] [--json]``."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kechuang.calculator import selectors
from kechuang.calculator.tests.selfcheck_data import AS_OF, put_alice_on_the_register
from kechuang.testing import ALICE_CODE


@pytest.fixture
def alice(alice_corp):
    return put_alice_on_the_register(alice_corp)


def run(*args: str) -> str:
    out = StringIO()
    call_command("selfcheck", *args, stdout=out)
    return out.getvalue()


def test_it_prints_every_policy_explained_in_chinese(alice):
    text = run(ALICE_CODE, "--as-of", AS_OF.isoformat())
    assert "首次认定高新技术企业奖励" in text and "结论: 符合" in text


def test_it_speaks_english_on_request(alice):
    text = run(ALICE_CODE, "--as-of", AS_OF.isoformat(), "--lang", "en")
    assert "first-time high-tech enterprise recognition" in text


def test_json_is_every_decisions_to_dict(alice):
    body = json.loads(run(ALICE_CODE, "--as-of", AS_OF.isoformat(), "--json"))
    assert body["decisions"] == json.loads(
        json.dumps(selectors.decisions_as_dicts(enterprise=alice, as_of=AS_OF), default=str)
    )


def test_an_unknown_code_or_a_bad_date_is_one_clear_error(alice):
    with pytest.raises(CommandError, match="no enterprise"):
        run("91310107MA1G99999X")
    with pytest.raises(CommandError, match="--as-of"):
        run(ALICE_CODE, "--as-of", "2025-02-30")
