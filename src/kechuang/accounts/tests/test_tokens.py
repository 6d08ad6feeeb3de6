from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

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


def test_a_user_issues_a_token_on_the_page_and_sees_it_once(client, ent_alice):
    client.force_login(ent_alice)
    page = client.post(reverse("accounts:tokens"), {"name": "ERP"}).content.decode()
    token = ApiToken.objects.get(user=ent_alice)
    clear = page.split('data-testid="new-token"')[1].split("<code>")[1].split("</code>")[0]
    assert tokens.user_for_token(clear) == ent_alice
    assert clear not in client.get(reverse("accounts:tokens")).content.decode()
    assert token.prefix in client.get(reverse("accounts:tokens")).content.decode()


def test_a_user_cannot_revoke_or_see_someone_elses_token(client, ent_alice, ent_bob):
    token, clear = tokens.token_create(user=ent_alice)
    client.force_login(ent_bob)
    assert token.prefix not in client.get(reverse("accounts:tokens")).content.decode()
    response = client.post(reverse("accounts:token_revoke", args=[token.pk]))
    assert response.status_code == 404
    assert tokens.user_for_token(clear) == ent_alice


def test_a_user_revokes_their_own_token(client, ent_alice):
    token, clear = tokens.token_create(user=ent_alice)
    client.force_login(ent_alice)
    assert client.get(reverse("accounts:token_revoke", args=[token.pk])).status_code == 405
    assert client.post(reverse("accounts:token_revoke", args=[token.pk])).status_code == 302
    assert tokens.user_for_token(clear) is None


def test_issuing_a_token_without_csrf_token_is_refused(ent_alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(ent_alice)
    assert client.post(reverse("accounts:tokens"), {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_anonymous_visitors_cannot_reach_tokens(client):
    assert client.get(reverse("accounts:tokens")).status_code == 302
