from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kechuang.accounts import tokens
from kechuang.accounts.models import ApiToken, AuditLog


def test_only_the_hash_of_a_token_is_stored(ent_alice):
    token, clear = tokens.token_create(user=ent_alice, name="erp")
    stored = ApiToken.objects.values().get(pk=token.pk)
    assert clear not in str(stored)
    assert stored["key_hash"] == tokens.hash_token(clear)
    assert tokens.user_for_token(clear) == ent_alice


def test_a_revoked_or_unknown_token_or_an_inactive_user_authenticates_nobody(ent_alice):
    token, clear = tokens.token_create(user=ent_alice)
    assert tokens.user_for_token(clear + "x") is None
    assert tokens.user_for_token("") is None
    ent_alice.is_active = False
    ent_alice.save()
    assert tokens.user_for_token(clear) is None
    ent_alice.is_active = True
    ent_alice.save()
    tokens.token_revoke(token=token)
    assert tokens.user_for_token(clear) is None


def test_the_token_command_creates_lists_and_revokes(staff_zhang):
    out = StringIO()
    call_command("token", "create", "staff_zhang", "--name", "script", stdout=out)
    clear = out.getvalue().strip()
    assert tokens.user_for_token(clear) == staff_zhang

    out = StringIO()
    call_command("token", "list", "staff_zhang", stdout=out)
    assert "active" in out.getvalue() and clear not in out.getvalue()

    call_command("token", "revoke", clear[:9], stdout=StringIO())
    assert tokens.user_for_token(clear) is None
    # Issuing and revoking are in the audit log, without the token itself.
    logged = AuditLog.objects.filter(obj_type="api_token").order_by("id")
    assert [e.action for e in logged] == ["api_token_create", "api_token_revoke"]
    assert all(clear not in str(e.after) for e in logged)


def test_the_token_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="no active user"):
        call_command("token", "create", "nobody")
