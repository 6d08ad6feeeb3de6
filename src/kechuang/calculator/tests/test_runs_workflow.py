"""Staff start a run from the page, review it, exclude with a reason, confirm; the
enterprise gets a notice and an email, confirms its wish and bank account, and only
then is a benefit record created."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse

from kechuang.accounts.models import AuditLog, Role
from kechuang.calculator.models_runs import (
    BenefitRecord,
    MianshenOffer,
    MianshenResult,
    MianshenRun,
    Notification,
)
from kechuang.registry.demo import demo_build
from kechuang.testing import make_user

AS_OF = dt.date(2025, 6, 30)
DISTRICT = ["district_hte_first_reward", "district_sh_sci_award_match", "district_little_giant_match"]


@pytest.fixture
def demo_district(db):
    demo_build(count=60)


def start_from_page(client, django_capture_on_commit_callbacks, **extra) -> MianshenRun:
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/calculator/runs/", {"policies": DISTRICT, "as_of": AS_OF.isoformat(), **extra}
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    return MianshenRun.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))


@pytest.mark.django_db
def test_staff_run_review_confirm_and_enterprise_accepts(
    client, demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    client.force_login(staff_zhang)
    run = start_from_page(client, django_capture_on_commit_callbacks)
    assert run.status == MianshenRun.Status.DONE, run.error
    page = client.get(f"/calculator/runs/{run.pk}/")
    assert page.status_code == 200
    assert "run-summary" in page.content.decode()
    assert client.get(f"/calculator/runs/{run.pk}/status/").status_code == 200

    payable = list(run.results.filter(payable__gt=0).order_by("credit_code"))
    assert len(payable) >= 2, "the demo district has enterprises paid without applying"
    dropped, kept = payable[0], payable[1]
    detail = client.get(f"/calculator/runs/{run.pk}/results/{kept.pk}/")
    assert detail.status_code == 200
    assert kept.policy_id in detail.content.decode() and 'data-verdict="eligible">符合<' in detail.content.decode()
    # What the run read, as people read it: dates as dates, amounts with separators.
    facts = detail.content.decode().split('data-testid="facts"', 1)[1].split("</table>", 1)[0]
    assert re.search(r"<td[^>]*>\d{4}-\d{2}-\d{2}</td>", facts), "a registration date shown as a date"
    assert not re.search(r">(19|20)\d{6}<", facts), "no yyyymmdd integers"
    assert "{'" not in detail.content.decode(), "no Python reprs"
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.get(f"/calculator/runs/{run.pk}/results/{kept.pk}/").content.decode()
    assert "Verdict: eligible" in english and "结论: 符合" not in english
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})

    # Excluding needs a written reason; it is audited.
    response = client.post(f"/calculator/runs/{run.pk}/results/{dropped.pk}/exclude/", {"reason": ""})
    dropped.refresh_from_db()
    assert not dropped.excluded
    client.post(
        f"/calculator/runs/{run.pk}/results/{dropped.pk}/exclude/",
        {"reason": "已被立案调查，暂缓兑现"},
    )
    dropped.refresh_from_db()
    assert dropped.excluded and dropped.exclusion_reason
    assert AuditLog.objects.filter(action="mianshen_result_exclude", note="已被立案调查，暂缓兑现").exists()

    user = make_user("ent_kept", Role.ENTERPRISE, kept.enterprise)
    user.email = "finance@kept.example.cn"
    user.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/calculator/runs/{run.pk}/confirm/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.CONFIRMED
    offers = MianshenOffer.objects.filter(run=run)
    assert not offers.filter(result=dropped).exists(), "an excluded enterprise is not offered"
    offer = offers.get(result=kept)
    assert offer.amount == kept.payable
    assert Notification.objects.filter(user=user).exists()
    assert any("finance@kept.example.cn" in m.to for m in mail.outbox)
    assert not BenefitRecord.objects.exists(), "no benefit record before the enterprise confirms"

    # Confirming twice changes nothing.
    client.post(f"/calculator/runs/{run.pk}/confirm/")
    assert MianshenOffer.objects.filter(run=run).count() == offers.count()

    # The enterprise confirms its wish and its bank account in one step.
    client.force_login(user)
    assert client.get("/calculator/offers/").status_code == 200
    client.post(f"/calculator/offers/{offer.pk}/accept/", {"bank_name": "", "bank_account": "1"})
    assert not BenefitRecord.objects.exists()
    # A bank name longer than the column is refused, not a server error (PostgreSQL).
    response = client.post(
        f"/calculator/offers/{offer.pk}/accept/",
        {"bank_name": "银" * 101, "bank_account": "62220210010012345"},
    )
    assert response.status_code < 500 and not BenefitRecord.objects.exists()
    client.post(
        f"/calculator/offers/{offer.pk}/accept/",
        {"bank_name": "中国工商银行上海普陀支行", "bank_account": "6222 0210 0100 1234 567"},
    )
    record = BenefitRecord.objects.get()
    assert record.amount == offer.amount and record.bank_account == "6222021001001234567"
    client.post(
        f"/calculator/offers/{offer.pk}/accept/",
        {"bank_name": "中国工商银行", "bank_account": "62220210010012345"},
    )
    assert BenefitRecord.objects.count() == 1


@pytest.mark.django_db
def test_run_page_shows_what_changed_since_the_previous_run(
    client, demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    client.force_login(staff_zhang)
    first = start_from_page(client, django_capture_on_commit_callbacks)
    gone = first.results.filter(verdict="eligible").first()
    assert gone is not None
    # The registry learns the enterprise is on the serious-dishonesty list.
    from kechuang.registry.models import ListEntry

    ListEntry.objects.create(
        enterprise=gone.enterprise, kind="serious_dishonesty", listed_on=dt.date(2025, 1, 2)
    )
    second = start_from_page(client, django_capture_on_commit_callbacks)
    assert second.facts_hash != first.facts_hash
    page = client.get(f"/calculator/runs/{second.pk}/").content.decode()
    assert "run-changes" in page
    assert gone.credit_code in page.split("run-changes", 1)[1]


@pytest.mark.django_db
def test_a_scoped_run_reads_only_its_street(
    client, demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    from kechuang.registry.models import Enterprise

    street = Enterprise.objects.values_list("street", flat=True).first()
    client.force_login(staff_zhang)
    run = start_from_page(client, django_capture_on_commit_callbacks, street=street)
    assert run.facts_count == Enterprise.objects.filter(street=street).count()
    assert set(run.results.values_list("enterprise__street", flat=True)) == {street}


@pytest.mark.django_db
def test_export_is_an_excel_workbook(
    client, demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    import io

    from openpyxl import load_workbook

    client.force_login(staff_zhang)
    run = start_from_page(client, django_capture_on_commit_callbacks)
    response = client.get(f"/calculator/runs/{run.pk}/export.xlsx")
    assert response.status_code == 200
    wb = load_workbook(io.BytesIO(response.content), read_only=True)
    assert [ws.title for ws in wb.worksheets] == ["运行信息 run", "汇总 summary", "结果 results", "事实 facts"]
    rows = list(wb["结果 results"].iter_rows(values_only=True))
    assert len(rows) == 1 + MianshenResult.objects.filter(run=run).count()
    info = {r[0]: r[1] for r in wb["运行信息 run"].iter_rows(values_only=True)}
    assert info["事实哈希 facts sha256"] == run.facts_hash




@pytest.mark.django_db
def test_staff_run_through_the_api(
    client, demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks
):
    from kechuang.accounts.tokens import token_create

    _, token = token_create(user=staff_zhang)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/mianshen/runs",
            {"policies": DISTRICT, "as_of": AS_OF.isoformat(), "scope": {}},
            content_type="application/json",
            **auth,
        )
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    body = client.get(f"/api/mianshen/runs/{run_id}", **auth).json()
    assert body["status"] == "done" and body["facts_count"] == 60
    assert set(body["policy_hashes"]) == set(DISTRICT)
    results = client.get(f"/api/mianshen/runs/{run_id}/results?verdict=eligible", **auth).json()
    assert results and all(r["verdict"] == "eligible" and r["outputs"] is None for r in results)
    # Outputs are computed again on request, and checked against the stored decision.
    results = client.get(
        f"/api/mianshen/runs/{run_id}/results?verdict=eligible&outputs=true", **auth
    ).json()
    assert results and all(r["outputs"]["verdict"] == "eligible" for r in results)
    one = client.get(f"/api/mianshen/runs/{run_id}/results/{results[0]['id']}", **auth).json()
    assert one["outputs"] == results[0]["outputs"]
    elsewhere = client.get(f"/api/mianshen/runs/{run_id + 1}/results/{results[0]['id']}", **auth)
    assert elsewhere.status_code == 404
    bad = client.post(
        "/api/mianshen/runs", {"policies": ["nope"], "as_of": AS_OF.isoformat()},
        content_type="application/json", **auth,
    )
    assert bad.status_code == 400 and bad.json()["extra"]["field"] == "policies"


class _BrokenMailServer:
    """An email backend whose server is down."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def open(self):
        raise ConnectionRefusedError("smtp down")

    def close(self):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")


@pytest.mark.django_db
def test_a_mail_server_down_does_not_undo_or_hide_a_confirmation(
    client, demo_district, staff_zhang, immediate_tasks, django_capture_on_commit_callbacks,
    settings,
):
    client.force_login(staff_zhang)
    run = start_from_page(client, django_capture_on_commit_callbacks)
    paid = run.results.filter(payable__gt=0).first()
    user = make_user("ent_mail_down", Role.ENTERPRISE, paid.enterprise)
    user.email = "finance@down.example.cn"
    user.save()
    settings.EMAIL_BACKEND = f"{__name__}._BrokenMailServer"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/calculator/runs/{run.pk}/confirm/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == MianshenRun.Status.CONFIRMED and run.offers.exists()
    assert Notification.objects.filter(user=user).exists()
