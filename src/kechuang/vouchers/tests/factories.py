"""Test data for vouchers: a program, an approved testing lab with a catalogue,
and helpers that walk an order through its life. Amounts here are test data
(budgets, prices), never policy figures: ratios and caps come from the engine."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from kechuang.accounts.models import Role
from kechuang.testing import credit_code, make_user
from kechuang.vouchers import services
from kechuang.vouchers.models import Institution, Offering, Program, ServiceCategory

TODAY = timezone.localdate()  # the services' "today" (Asia/Shanghai), not the host's date
ELIGIBLE = {"registered_in_shanghai": True, "is_tsme": True}
PDF = b"%PDF-1.7\n% delivery report\n"
_keys = itertools.count(1)
_codes = itertools.count(1)


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


def category(code: str = "software_testing", name: str = "软件测试") -> ServiceCategory:
    return ServiceCategory.objects.get_or_create(code=code, defaults={"name": name})[0]


def program(
    staff,
    *,
    budget: str = "1000000.00",
    per_enterprise_cap: str = "200000.00",
    per_team_cap: str = "50000.00",
    valid_from: dt.date | None = None,
    valid_until: dt.date | None = None,
    year: int | None = None,
) -> Program:
    valid_from = valid_from or TODAY.replace(month=1, day=1)
    valid_until = valid_until or TODAY.replace(month=12, day=31)
    return services.program_create(
        year=year or valid_from.year,
        name="科技服务券",
        budget=budget,
        per_enterprise_cap=per_enterprise_cap,
        per_team_cap=per_team_cap,
        valid_from=valid_from,
        valid_until=valid_until,
        categories=[category(), category("mlps_assessment", "等保测评")],
        actor=staff,
        idempotency_key=key("program"),
    )


def institution(staff, user=None, name: str = "上海软件测评中心") -> Institution:
    user = user or make_user(f"inst_{next(_codes)}", Role.INSTITUTION)
    inst = services.institution_apply(
        actor=user,
        name=name,
        credit_code=credit_code(f"12310000MB{next(_codes):07d}"),
        bank_name="工商银行",
        bank_account="6222000011112222",
    )
    return services.institution_decide(institution=inst, actor=staff, approve=True)


def offering(inst: Institution, user, price: str = "100000.00") -> Offering:
    return services.offering_create(
        institution=inst, actor=user, category=category(), name="软件产品登记测试", price=price
    )


def issue(prog: Program, staff, ent_user, amount: str, **kw) -> None:
    app = services.quota_apply(
        program=prog,
        enterprise=ent_user.enterprise,
        actor=ent_user,
        amount=amount,
        applicant_facts=ELIGIBLE,
        **kw,
    )
    services.quota_approve(
        application=app, actor=staff, amount=amount, idempotency_key=key("q"), **kw
    )


def order(
    prog: Program, ent_user, off: Offering, amount: str, order_date: dt.date | None = None, **kw
):
    d = order_date or TODAY
    return services.order_create(
        program=prog,
        enterprise=ent_user.enterprise,
        offering=off,
        actor=ent_user,
        contract_amount=amount,
        order_date=d,
        start_date=d,
        end_date=d,
        **kw,
    )


def pdf(name: str = "report.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PDF, content_type="application/pdf")


def yuan(text: str) -> Decimal:
    return Decimal(text)
