"""An enterprise user cannot start runs, see other enterprises' results or change
parameters: the requests an intruder would send, on the pages and in the API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from kechuang.accounts.tokens import token_create
from kechuang.calculator.models_runs import MianshenOffer, MianshenResult, MianshenRun, Reform

AS_OF = dt.date(2025, 6, 30)


@pytest.fixture
def finished_run(staff_zhang, alice_corp, bob_corp):
    """A confirmed run with one offer to Alice's company (made by hand: access only)."""
    run = MianshenRun.objects.create(
        policies=["district_hte_first_reward"], as_of=AS_OF, status=MianshenRun.Status.DONE,
        created_by=staff_zhang,
    )
    alice = MianshenResult.objects.create(
        run=run, enterprise=alice_corp, credit_code=alice_corp.credit_code,
        policy_id="district_hte_first_reward", verdict="eligible", benefit=Decimal("1"),
        payable=Decimal("1"),
    )
    MianshenResult.objects.create(
        run=run, enterprise=bob_corp, credit_code=bob_corp.credit_code,
        policy_id="district_hte_first_reward", verdict="ineligible",
    )
    offer = MianshenOffer.objects.create(
        run=run, result=alice, enterprise=alice_corp, policy_id=alice.policy_id, amount=Decimal("1")
    )
    return run, alice, offer


@pytest.mark.django_db
def test_an_enterprise_user_cannot_start_or_read_runs(client, ent_alice, finished_run):
    run, alice, _offer = finished_run
    client.force_login(ent_alice)
    before = MianshenRun.objects.count()
    assert client.post(
        "/calculator/runs/", {"policies": ["district_hte_first_reward"], "as_of": "2025-06-30"}
    ).status_code == 403
    assert MianshenRun.objects.count() == before
    for url in (
        "/calculator/runs/",
        f"/calculator/runs/{run.pk}/",
        f"/calculator/runs/{run.pk}/status/",
        f"/calculator/runs/{run.pk}/export.xlsx",
        f"/calculator/runs/{run.pk}/results/{alice.pk}/",
        "/calculator/reforms/",
    ):
        assert client.get(url).status_code == 403, url
    for url, data in (
        (f"/calculator/runs/{run.pk}/confirm/", {}),
        (f"/calculator/runs/{run.pk}/results/{alice.pk}/exclude/", {"reason": "x"}),
        (f"/calculator/runs/{run.pk}/restart/", {}),
    ):
        assert client.post(url, data).status_code == 403, url
    alice.refresh_from_db()
    assert not alice.excluded


@pytest.mark.django_db
def test_an_enterprise_user_cannot_change_parameters(client, ent_alice):
    client.force_login(ent_alice)
    response = client.post(
        "/calculator/reforms/?policy=district_hte_first_reward",
        {"policy": "district_hte_first_reward", "as_of": "2025-06-30", "name": "x"},
    )
    assert response.status_code == 403
    assert not Reform.objects.exists()


@pytest.mark.django_db
def test_an_auditor_reads_runs_but_changes_nothing(client, auditor_li, finished_run):
    run, alice, _offer = finished_run
    client.force_login(auditor_li)
    assert client.get(f"/calculator/runs/{run.pk}/").status_code == 200
    assert client.post(f"/calculator/runs/{run.pk}/confirm/").status_code == 403
    assert client.post(
        f"/calculator/runs/{run.pk}/results/{alice.pk}/exclude/", {"reason": "x"}
    ).status_code == 403


@pytest.mark.django_db
def test_bob_cannot_see_or_accept_alices_offer(client, ent_bob, finished_run):
    _run, _alice, offer = finished_run
    client.force_login(ent_bob)
    page = client.get("/calculator/offers/").content.decode()
    assert "offer-district_hte_first_reward" not in page
    response = client.post(
        f"/calculator/offers/{offer.pk}/accept/", {"bank_name": "b", "bank_account": "12345678901"}
    )
    assert response.status_code == 404
    offer.refresh_from_db()
    assert offer.status == MianshenOffer.Status.OFFERED


@pytest.mark.django_db
def test_api_refuses_an_enterprise_token(client, ent_alice, ent_bob, finished_run):
    run, _alice, offer = finished_run
    _, alice_token = token_create(user=ent_alice)
    _, bob_token = token_create(user=ent_bob)
    alice = {"HTTP_AUTHORIZATION": f"Bearer {alice_token}"}
    bob = {"HTTP_AUTHORIZATION": f"Bearer {bob_token}"}
    response = client.post(
        "/api/mianshen/runs",
        {"policies": ["district_hte_first_reward"], "as_of": "2025-06-30"},
        content_type="application/json",
        **alice,
    )
    assert response.status_code == 403
    assert client.get(f"/api/mianshen/runs/{run.pk}", **alice).status_code == 403
    assert client.get(f"/api/mianshen/runs/{run.pk}/results", **alice).status_code == 403
    assert client.post(f"/api/mianshen/runs/{run.pk}/confirm", **alice).status_code == 403
    assert client.get("/api/mianshen/offers", **bob).json() == []
    response = client.post(
        f"/api/mianshen/offers/{offer.pk}/accept",
        {"bank_name": "b", "bank_account": "12345678901"},
        content_type="application/json",
        **bob,
    )
    assert response.status_code == 404
    assert [o["id"] for o in client.get("/api/mianshen/offers", **alice).json()] == [offer.pk]


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(client, finished_run):
    run, _alice, _offer = finished_run
    response = client.get(f"/calculator/runs/{run.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("back", ["https://evil.example/", "//evil.example/x", "NaN", "javascript:alert(1)"])
def test_excluding_never_redirects_off_the_site(client, staff_zhang, finished_run, back):
    run, alice, _offer = finished_run
    client.force_login(staff_zhang)
    response = client.post(
        f"/calculator/runs/{run.pk}/results/{alice.pk}/exclude/", {"reason": "x", "next": back}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/calculator/runs/{run.pk}/"


@pytest.mark.django_db
def test_excluding_returns_to_the_page_of_this_site_it_came_from(client, staff_zhang, finished_run):
    run, alice, _offer = finished_run
    client.force_login(staff_zhang)
    back = f"/calculator/runs/{run.pk}/?page=2"
    response = client.post(
        f"/calculator/runs/{run.pk}/results/{alice.pk}/exclude/", {"reason": "x", "next": back}
    )
    assert response["Location"] == back


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["offset=-1", "limit=-1", "limit=0", "offset=9223372036854775808"])
def test_result_pages_out_of_range_are_refused_not_a_crash(client, staff_zhang, finished_run, query):
    run, _alice, _offer = finished_run
    _, token = token_create(user=staff_zhang)
    response = client.get(
        f"/api/mianshen/runs/{run.pk}/results?{query}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code in (400, 422), response.content
    assert client.get(
        f"/api/mianshen/runs/{run.pk}/results?offset=1&limit=1", HTTP_AUTHORIZATION=f"Bearer {token}"
    ).status_code == 200
