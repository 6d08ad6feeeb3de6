"""Login, logout and the audit log page, with the requests an intruder would send."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kechuang.accounts.models import AuditLog
from kechuang.accounts.services import audit_record
from kechuang.testing import PASSWORD


def test_the_login_page_is_in_chinese_by_default(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    assert "登录" in response.content.decode()


def test_a_user_logs_in_with_the_right_password_only(client, staff_zhang):
    bad = client.post(reverse("accounts:login"), {"username": "staff_zhang", "password": "nope"})
    assert bad.status_code == 200 and "_auth_user_id" not in client.session
    good = client.post(reverse("accounts:login"), {"username": "staff_zhang", "password": PASSWORD})
    assert good.status_code == 302 and client.session["_auth_user_id"] == str(staff_zhang.pk)


def test_passwords_are_stored_hashed_with_a_slow_hasher_in_production(staff_zhang):
    from django.conf import global_settings

    import kechuang.settings

    assert PASSWORD not in staff_zhang.password and staff_zhang.check_password(PASSWORD)
    # The suite swaps in a fast hasher (conftest.py); the app keeps Django's PBKDF2.
    hashers = getattr(kechuang.settings, "PASSWORD_HASHERS", global_settings.PASSWORD_HASHERS)
    assert hashers[0] == "django.contrib.auth.hashers.PBKDF2PasswordHasher"


def test_a_login_posted_without_csrf_token_is_refused(staff_zhang):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("accounts:login"), {"username": "staff_zhang", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post_and_a_get_changes_nothing(client, staff_zhang):
    client.force_login(staff_zhang)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302 and "_auth_user_id" not in client.session


def _entries(staff_zhang):
    audit_record(
        actor=staff_zhang,
        action="update",
        obj_type="enterprise",
        obj_id="91310107MA1G00001U",
        before={"contact_name": "王"},
        after={"contact_name": "李"},
    )
    audit_record(
        actor=None,
        action="import",
        obj_type="import",
        obj_id="file.xlsx",
        before=None,
        after={"n": 3},
    )


def test_the_auditor_reads_and_filters_the_audit_log(client, auditor_li, staff_zhang):
    _entries(staff_zhang)
    client.force_login(auditor_li)
    page = client.get(reverse("accounts:audit_log")).content.decode()
    assert "联系人 (contact_name): 王 → 李" in page and "file.xlsx" in page

    only_staff = client.get(
        reverse("accounts:audit_log"), {"actor": "staff_zhang"}
    ).content.decode()
    assert "91310107MA1G00001U" in only_staff and "file.xlsx" not in only_staff

    only_imports = client.get(
        reverse("accounts:audit_log"), {"obj_type": "import"}
    ).content.decode()
    assert "file.xlsx" in only_imports and "contact_name" not in only_imports


def test_the_audit_log_finds_an_enterprise_and_its_records_by_credit_code(
    client, auditor_li, staff_zhang
):
    _entries(staff_zhang)
    audit_record(
        actor=staff_zhang,
        action="fiscal_year_update",
        obj_type="fiscal_year",
        obj_id="91310107MA1G00001U/2024",
        before={"sales_revenue": "1.00"},
        after={"sales_revenue": "2.00"},
    )
    audit_record(
        actor=staff_zhang,
        action="x",
        obj_type="enterprise",
        obj_id="91310107MA1G00001U9",
        before=None,
        after={},
    )
    client.force_login(auditor_li)
    page = client.get(
        reverse("accounts:audit_log"), {"obj_id": "91310107MA1G00001U"}
    ).content.decode()
    assert "销售收入 (sales_revenue): 1.00 → 2.00" in page and "contact_name" in page
    assert "91310107MA1G00001U9" not in page and "file.xlsx" not in page


def test_the_audit_log_filters_by_local_day(client, auditor_li, staff_zhang):
    _entries(staff_zhang)
    AuditLog.objects.update(at=timezone.now() - dt.timedelta(days=3))
    client.force_login(auditor_li)
    today = timezone.localdate().isoformat()
    page = client.get(reverse("accounts:audit_log"), {"since": today}).content.decode()
    assert "file.xlsx" not in page


def test_nobody_but_auditors_and_admins_reads_the_audit_log(
    client, staff_zhang, ent_alice, inst_lab, expert_wang, admin_root
):
    for user in (staff_zhang, ent_alice, inst_lab, expert_wang):
        client.force_login(user)
        assert client.get(reverse("accounts:audit_log")).status_code == 403, user.username
    client.force_login(admin_root)
    assert client.get(reverse("accounts:audit_log")).status_code == 200


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(reverse("accounts:audit_log"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def _fail(client, username: str, times: int) -> None:
    for _ in range(times):
        client.post(reverse("accounts:login"), {"username": username, "password": "guess"})


def test_five_failed_logins_lock_the_username_even_for_the_right_password(client, staff_zhang):
    _fail(client, "staff_zhang", 5)
    response = client.post(
        reverse("accounts:login"), {"username": "staff_zhang", "password": PASSWORD}
    )
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert "15" in response.content.decode()
    failures = AuditLog.objects.filter(action="login_failed", obj_id="staff_zhang")
    assert failures.count() == 5 and "guess" not in str(list(failures.values()))


def test_logins_and_logouts_are_audited_with_the_address_but_never_the_password(client, staff_zhang):
    client.post(reverse("accounts:login"), {"username": "staff_zhang", "password": PASSWORD},
                REMOTE_ADDR="10.1.2.3")
    client.post(reverse("accounts:logout"), REMOTE_ADDR="10.1.2.3")
    entries = AuditLog.objects.filter(obj_type="user", obj_id="staff_zhang").order_by("at", "id")
    assert [(e.action, e.actor_id, e.note) for e in entries] == [
        ("login", staff_zhang.pk, "ip 10.1.2.3"),
        ("logout", staff_zhang.pk, "ip 10.1.2.3"),
    ]
    assert PASSWORD not in str(list(entries.values()))


def test_the_admin_login_is_locked_too(client, admin_root):
    _fail(client, "admin_root", 5)
    client.post("/admin/login/", {"username": "admin_root", "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_a_long_username_is_locked_like_any_other(client, staff_zhang):
    from kechuang.accounts.models import User

    long_name = "u" * 150
    User.objects.create_user(username=long_name, password=PASSWORD)
    # A success ends the streak for a long name as for any other.
    _fail(client, long_name, 4)
    client.post(reverse("accounts:login"), {"username": long_name, "password": PASSWORD})
    assert "_auth_user_id" in client.session
    client.post(reverse("accounts:logout"))
    _fail(client, long_name, 1)
    client.post(reverse("accounts:login"), {"username": long_name, "password": PASSWORD})
    assert "_auth_user_id" in client.session
    client.post(reverse("accounts:logout"))
    _fail(client, long_name, 5)
    client.post(reverse("accounts:login"), {"username": long_name, "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_the_token_page_is_never_cached(client, staff_zhang):
    client.force_login(staff_zhang)
    response = client.post("/accounts/tokens/", {"name": "财务系统"})
    assert "no-store" in response["Cache-Control"]


def test_the_lock_ends_after_the_window(client, staff_zhang):
    _fail(client, "staff_zhang", 5)
    AuditLog.objects.filter(action="login_failed").update(
        at=timezone.now() - dt.timedelta(minutes=16)
    )
    client.post(reverse("accounts:login"), {"username": "staff_zhang", "password": PASSWORD})
    assert "_auth_user_id" in client.session


def test_a_successful_login_ends_the_streak(client, staff_zhang):
    _fail(client, "staff_zhang", 4)
    client.post(reverse("accounts:login"), {"username": "staff_zhang", "password": PASSWORD})
    client.post(reverse("accounts:logout"))
    _fail(client, "staff_zhang", 4)
    client.post(reverse("accounts:login"), {"username": "staff_zhang", "password": PASSWORD})
    assert "_auth_user_id" in client.session


def test_a_locked_unknown_name_reads_like_a_locked_real_one(client, staff_zhang):
    _fail(client, "staff_zhang", 5)
    _fail(client, "nobody_here", 5)
    real = client.post(reverse("accounts:login"), {"username": "staff_zhang", "password": "x"})
    fake = client.post(reverse("accounts:login"), {"username": "nobody_here", "password": "x"})
    assert real.context["form"].errors == fake.context["form"].errors


def test_an_idle_session_ends_and_activity_keeps_it_alive(client, auditor_li):
    """A session idle longer than the limit no longer opens pages; a request renews it."""
    from django.conf import settings
    from django.contrib.sessions.models import Session

    assert settings.SESSION_COOKIE_AGE <= 60 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    client.force_login(auditor_li)
    key = client.session.session_key
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + dt.timedelta(seconds=5))
    assert client.get(reverse("accounts:audit_log")).status_code == 200
    renewed = Session.objects.get(pk=key).expire_date
    assert renewed > timezone.now() + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)
    Session.objects.filter(pk=key).update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    response = client.get(reverse("accounts:audit_log"))
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


@pytest.mark.parametrize("query", [{"since": "0001-01-01"}, {"until": "9999-12-31"}])
def test_an_audit_filter_date_at_the_end_of_the_calendar_is_a_form_error(client, auditor_li, query):
    client.force_login(auditor_li)
    assert client.get(reverse("accounts:audit_log"), query).status_code == 200
