"""Single-record services: every change audited, refusals named, constraints held."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from kechuang.accounts.models import AuditLog
from kechuang.errors import KechuangError
from kechuang.registry.models import Enterprise, FiscalYear
from kechuang.registry.services import enterprise_create, enterprise_update, fiscal_year_set
from kechuang.testing import credit_code


def test_it_records_who_changed_an_enterprise_and_the_fields_before_and_after(
    alice_corp, staff_zhang
):
    enterprise_update(
        actor=staff_zhang, enterprise=alice_corp, street="万里街道", name=alice_corp.name
    )
    entry = AuditLog.objects.get(action="enterprise_update")
    assert entry.actor == staff_zhang and entry.obj_id == alice_corp.credit_code
    assert entry.before == {"street": "长风新村街道"} and entry.after == {"street": "万里街道"}


def test_an_update_that_changes_nothing_writes_no_audit_entry(alice_corp, staff_zhang):
    enterprise_update(actor=staff_zhang, enterprise=alice_corp, street=alice_corp.street)
    assert not AuditLog.objects.exists()


def test_it_refuses_an_enterprise_with_a_bad_credit_code(db, staff_zhang):
    with pytest.raises(KechuangError) as refused:
        enterprise_create(actor=staff_zhang, credit_code="91310107MA1G000010", name="x")
    assert refused.value.field == "credit_code"


def test_it_refuses_an_enterprise_already_registered(alice_corp, staff_zhang):
    with pytest.raises(KechuangError, match="already registered"):
        enterprise_create(actor=staff_zhang, credit_code=alice_corp.credit_code, name="x")


def test_it_creates_an_enterprise_and_audits_the_creation(db, staff_zhang):
    code = credit_code("91310107MA1J00001")
    enterprise_create(actor=staff_zhang, credit_code=code, name="新企业", industry_code="7320")
    assert AuditLog.objects.get(obj_id=code).after == {"name": "新企业", "industry_code": "7320"}


def test_it_refuses_more_sci_tech_staff_than_staff(alice_corp, staff_zhang):
    with pytest.raises(KechuangError) as refused:
        fiscal_year_set(
            actor=staff_zhang, enterprise=alice_corp, year=2024, staff_sci_tech=Decimal("121")
        )
    assert refused.value.field == "staff_sci_tech"


def test_a_new_fiscal_year_is_audited_as_a_creation(alice_corp, staff_zhang):
    fiscal_year_set(actor=staff_zhang, enterprise=alice_corp, year=2023, rd_expense=Decimal("5.00"))
    entry = AuditLog.objects.get(action="fiscal_year_create")
    assert entry.obj_id == f"{alice_corp.credit_code}/2023" and entry.after == {
        "rd_expense": "5.00"
    }


def test_the_database_itself_refuses_a_negative_amount(alice_corp):
    with pytest.raises(IntegrityError), transaction.atomic():
        FiscalYear.objects.create(enterprise=alice_corp, year=2020, rd_expense=Decimal("-1"))


def test_the_database_itself_refuses_more_sci_tech_staff_than_staff(alice_corp):
    with pytest.raises(IntegrityError), transaction.atomic():
        FiscalYear.objects.create(
            enterprise=alice_corp, year=2020, staff_total=Decimal(5), staff_sci_tech=Decimal(6)
        )


def test_deleting_an_enterprise_in_the_admin_keeps_every_figure_in_the_audit_log(
    alice_corp, admin_root, client
):
    year = alice_corp.fiscal_years.get()
    client.force_login(admin_root)
    response = client.post(
        f"/admin/registry/enterprise/{alice_corp.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302 and not Enterprise.objects.filter(pk=alice_corp.pk).exists()
    gone = AuditLog.objects.filter(action="fiscalyear_delete").get()
    assert gone.obj_id == f"{alice_corp.credit_code}/{year.pk}"
    assert gone.before["sales_revenue"] == str(year.sales_revenue) and gone.before["year"] == year.year
    assert AuditLog.objects.get(action="enterprise_delete").before["name"] == alice_corp.name


def test_a_change_through_the_admin_site_is_audited_too(alice_corp, admin_root, client):
    client.force_login(admin_root)
    url = f"/admin/registry/enterprise/{alice_corp.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: ("" if v is None else v) for k, v in form.initial.items()}
    data.update(
        {
            "street": "万里街道",
            "fiscal_years-TOTAL_FORMS": "1",
            "fiscal_years-INITIAL_FORMS": "1",
            "fiscal_years-MIN_NUM_FORMS": "0",
            "fiscal_years-MAX_NUM_FORMS": "1000",
            "fiscal_years-0-id": alice_corp.fiscal_years.get().pk,
            "fiscal_years-0-enterprise": alice_corp.pk,
        }
    )
    for name in (
        "registered_in_mainland",
        "resident_enterprise",
        "ip_surveyed",
        "compliance_checked",
    ):
        data[name] = {True: "true", False: "false", None: "unknown"}[getattr(alice_corp, name)]
    for name, value in list(data.items()):
        if value is None or (name not in form.fields and not name.startswith("fiscal_years")):
            data.pop(name)
        elif form.fields.get(name) is not None and "Boolean" in type(form.fields[name]).__name__:
            data[name] = {True: "true", False: "false", None: "unknown"}.get(value, value)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditLog.objects.get(action="enterprise_update")
    assert entry.actor == admin_root and entry.after == {"street": "万里街道"}
