"""Who may see whose self-check: the requests an intruder would send, page and API."""

from __future__ import annotations

import pytest
from django.test import Client

from kechuang.accounts.tokens import token_create
from kechuang.calculator.tests.selfcheck_data import put_alice_on_the_register
from kechuang.testing import ALICE_CODE, BOB_CODE


@pytest.fixture
def alice(alice_corp):
    return put_alice_on_the_register(alice_corp)


def bearer(user) -> dict[str, str]:
    _token, clear = token_create(user=user, name="test")
    return {"Authorization": f"Bearer {clear}"}


def test_an_enterprise_user_sees_their_own_selfcheck(client, alice, ent_alice):
    client.force_login(ent_alice)
    response = client.get(f"/calculator/{ALICE_CODE}/?as_of=2025-06-30")
    assert response.status_code == 200
    assert "上海爱丽丝软件有限公司" in response.content.decode()


def test_an_enterprise_user_asking_for_another_enterprises_page_gets_404(client, alice, ent_bob):
    client.force_login(ent_bob)
    response = client.get(f"/calculator/{ALICE_CODE}/")
    assert response.status_code == 404
    assert "爱丽丝" not in response.content.decode()


def test_another_enterprise_reads_the_same_as_a_code_that_does_not_exist(client, alice, ent_bob):
    client.force_login(ent_bob)
    unknown = client.get("/calculator/91310107MA1G99999X/")
    theirs = client.get(f"/calculator/{ALICE_CODE}/")
    assert unknown.status_code == theirs.status_code == 404


def test_anonymous_visitors_cannot_see_a_selfcheck(client, alice):
    response = client.get(f"/calculator/{ALICE_CODE}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("who", ["inst_lab", "expert_wang"])
def test_institutions_and_experts_see_no_enterprise_selfcheck(client, alice, who, request):
    client.force_login(request.getfixturevalue(who))
    assert client.get(f"/calculator/{ALICE_CODE}/").status_code == 404


@pytest.mark.parametrize("who", ["staff_zhang", "auditor_li", "admin_root"])
def test_commission_staff_see_any_enterprises_selfcheck(client, alice, bob_corp, who, request):
    client.force_login(request.getfixturevalue(who))
    for code in (ALICE_CODE, BOB_CODE):
        assert client.get(f"/calculator/{code}/").status_code == 200


def test_the_calculator_index_sends_an_enterprise_user_to_their_own_page(client, ent_alice):
    client.force_login(ent_alice)
    response = client.get("/calculator/")
    assert response.status_code == 302 and response["Location"] == f"/calculator/{ALICE_CODE}/"


def test_staff_choose_an_enterprise_by_code(client, staff_zhang, alice):
    client.force_login(staff_zhang)
    response = client.get("/calculator/", {"code": ALICE_CODE.lower()})
    assert response.status_code == 302
    assert client.get(response["Location"]).status_code == 200


# --- API ----------------------------------------------------------------------


def test_the_api_refuses_another_enterprises_selfcheck_with_404(client, alice, ent_bob):
    response = client.get(f"/api/calculator/{ALICE_CODE}", headers=bearer(ent_bob))
    assert response.status_code == 404
    assert response.json() == {"message": "Not found", "extra": {"field": None}}


def test_the_api_needs_a_token_for_a_selfcheck(client, alice):
    assert client.get(f"/api/calculator/{ALICE_CODE}").status_code == 401


def test_the_api_gives_an_enterprise_its_own_selfcheck(client, alice, ent_alice):
    response = client.get(
        f"/api/calculator/{ALICE_CODE}", {"as_of": "2025-06-30"}, headers=bearer(ent_alice)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["credit_code"] == ALICE_CODE and body["as_of"] == "2025-06-30"
    assert "district_hte_first_reward" in [d["policy"]["id"] for d in body["decisions"]]


@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31"])
def test_a_day_outside_the_calendar_the_platform_decides_on_is_refused_not_a_crash(
    client, alice, ent_alice, as_of
):
    response = client.get(f"/api/calculator/{ALICE_CODE}", {"as_of": as_of}, headers=bearer(ent_alice))
    assert response.status_code == 400 and response.json()["extra"]["field"] == "as_of"
    client.force_login(ent_alice)
    assert client.get(f"/calculator/{ALICE_CODE}/", {"as_of": as_of}).status_code == 200


# --- the public calculator: anybody, nothing stored, CSRF on --------------------


def test_anonymous_visitors_may_use_the_public_calculator(client):
    assert client.get("/calculator/try/").status_code == 200
    page = client.get("/calculator/try/district_little_giant_match/")
    assert page.status_code == 200 and "csrfmiddlewaretoken" in page.content.decode()


def test_the_public_calculator_form_needs_a_csrf_token():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/calculator/try/district_little_giant_match/", {"as_of": "2025-06-30"})
    assert response.status_code == 403


def test_the_public_calculator_shows_no_registry_data(client, alice):
    page = client.get("/calculator/try/district_hte_first_reward/").content.decode()
    assert "爱丽丝" not in page and ALICE_CODE not in page


def test_an_unknown_policy_is_not_found(client):
    assert client.get("/calculator/try/no_such_policy/").status_code == 404


def test_the_selfcheck_page_turns_english_with_the_switch(client, alice, ent_alice):
    client.force_login(ent_alice)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = client.get(f"/calculator/{ALICE_CODE}/?as_of=2025-06-30").content.decode()
    assert "Policy calculator" in page and "Eligible" in page
    assert "Reward for first-time high-tech enterprise recognition" in page
    assert "first recognised as a high-tech enterprise last year or this year" in page


@pytest.mark.parametrize("code", ["1/2/2024", "../x", "a b"])
def test_a_code_that_is_not_letters_and_digits_is_a_form_error(client, staff_zhang, code):
    client.force_login(staff_zhang)
    response = client.get("/calculator/", {"code": code})
    assert response.status_code == 200
    assert response.context["form"].errors["code"]
