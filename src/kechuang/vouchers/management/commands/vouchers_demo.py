"""`kechuang vouchers_demo`: a voucher program for the demo district (once).

Needs the demo logins (`kechuang demo`): staff_zhang runs this year's program,
inst_lab's testing centre is approved with a catalogue, ent_alice and ent_bob
have quota, and Alice has one order delivered and claimed, so every role's
page has something to show. The amounts are demo data entered as staff would."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from kechuang.accounts.models import User
from kechuang.vouchers import services
from kechuang.vouchers.models import Institution, Program, ServiceCategory

DEMO_NAME = "科技服务券（演示）"
CATEGORIES = (
    ("software_testing", "软件测试"),
    ("mlps_assessment", "网络安全等级保护测评"),
    ("smart_manufacturing", "智能制造能力成熟度评估"),
    ("consulting", "科技咨询"),
)


class Command(BaseCommand):
    help = "Create the demo voucher program, institution, quotas and one order (idempotent)."

    def handle(self, *args, **options) -> None:
        users = {
            u.username: u
            for u in User.objects.filter(
                username__in=["staff_zhang", "inst_lab", "ent_alice", "ent_bob"]
            )
        }
        if len(users) < 4:
            raise CommandError("run `kechuang demo` first: the demo logins are missing")
        if Program.objects.filter(name=DEMO_NAME).exists():
            self.stdout.write("demo voucher program already present")
            return
        staff, lab_user = users["staff_zhang"], users["inst_lab"]
        today = timezone.localdate()
        with transaction.atomic():
            categories = [
                ServiceCategory.objects.get_or_create(code=c, defaults={"name": n})[0]
                for c, n in CATEGORIES
            ]
            program = services.program_create(
                year=today.year,
                name=DEMO_NAME,
                budget="3740000.00",
                per_enterprise_cap="300000.00",
                per_team_cap="50000.00",
                valid_from=today.replace(month=1, day=1),
                valid_until=today.replace(month=12, day=31),
                categories=categories,
                actor=staff,
                idempotency_key=f"demo-program-{today.year}",
            )
            lab = Institution.objects.filter(
                members=lab_user
            ).first() or services.institution_apply(
                actor=lab_user,
                name="上海市软件评测中心（演示）",
                credit_code="12310000MB2Q00001X",
                bank_name="中国工商银行上海分行",
                bank_account="1001 2345 6789 0000",
            )
            if lab.status == Institution.Status.PENDING:
                lab = services.institution_decide(institution=lab, actor=staff, approve=True)
            testing = services.offering_create(
                institution=lab,
                actor=lab_user,
                category=categories[0],
                name="软件产品登记测试",
                price="60000.00",
            )
            services.offering_create(
                institution=lab,
                actor=lab_user,
                category=categories[1],
                name="等保二级测评",
                price="80000.00",
            )
            facts = {"registered_in_shanghai": True, "is_tsme": True}
            for username, amount in (("ent_alice", "200000.00"), ("ent_bob", "120000.00")):
                user = users[username]
                app = services.quota_apply(
                    program=program,
                    enterprise=user.enterprise,
                    actor=user,
                    amount=amount,
                    applicant_facts=facts,
                )
                services.quota_approve(
                    application=app,
                    actor=staff,
                    amount=amount,
                    idempotency_key=f"demo-quota-{program.pk}-{username}",
                )
            alice = users["ent_alice"]
            order = services.order_create(
                program=program,
                enterprise=alice.enterprise,
                offering=testing,
                actor=alice,
                contract_amount="60000.00",
                order_date=today,
                start_date=today,
                end_date=today,
                contract_number="DEMO-001",
            )
            services.order_voucher_apply(
                order=order, actor=alice, idempotency_key=f"demo-order-{order.pk}"
            )
            report = ContentFile(b"%PDF-1.4\n% demo delivery report\n", name="report.pdf")
            services.order_deliver(order=order, actor=lab_user, upload=report)
            services.claim_submit(order=order, actor=lab_user)
        self.stdout.write(f"demo voucher program #{program.pk} created: /vouchers/")
