"""`kechuang vouchers_bench --yes-write-benchmark-data`: voucher applications per
second with concurrent clients calling the service layer, then the invariants.

It writes a benchmark program, institution, enterprises and orders into the
configured database: point DATABASE_URL at a scratch database. Each client is
its own process (own connection, no shared GIL), released together; every
client applies vouchers to its share of orders spread over many enterprises
(a few clients share each enterprise, so its quota lock is contended)."""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import timezone

from kechuang.accounts.models import Role, User
from kechuang.errors import KechuangError
from kechuang.registry.models import Enterprise
from kechuang.vouchers import selectors, services
from kechuang.vouchers.models import ServiceCategory, ServiceOrder


def _client(order_ids: list[int], barrier, results) -> None:
    connections.close_all()
    done = refused = 0
    actors: dict[int, User] = {}  # a client signs in once per enterprise, not per order
    barrier.wait()
    for pk in order_ids:
        order = ServiceOrder.objects.select_related("enterprise", "program").get(pk=pk)
        actor = actors.get(order.enterprise_id)
        if actor is None:
            actor = actors[order.enterprise_id] = User.objects.get(enterprise=order.enterprise)
        try:
            services.order_voucher_apply(order=order, actor=actor, idempotency_key=f"bench-{pk}")
            done += 1
        except KechuangError:
            refused += 1
    results.put((done, refused))
    connections.close_all()


class Command(BaseCommand):
    help = "Benchmark voucher applications with concurrent clients (writes data: scratch DB only)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--clients", type=int, default=32)
        parser.add_argument("--orders", type=int, default=3200)
        parser.add_argument("--enterprises", type=int, default=64)
        parser.add_argument("--yes-write-benchmark-data", action="store_true")

    def handle(self, *args, clients: int, orders: int, enterprises: int, **opts) -> None:
        if not opts["yes_write_benchmark_data"]:
            raise CommandError(
                "writes benchmark data; pass --yes-write-benchmark-data on a scratch database"
            )
        run = uuid.uuid4().hex[:8]
        today = timezone.localdate()
        staff = User.objects.create_user(f"bench_staff_{run}", role=Role.STAFF)
        inst_user = User.objects.create_user(f"bench_inst_{run}", role=Role.INSTITUTION)
        category, _ = ServiceCategory.objects.get_or_create(
            code="bench", defaults={"name": "bench"}
        )
        per_order = Decimal("100.00")
        quota_each = per_order * orders // enterprises  # enough for about all of its orders
        program = services.program_create(
            year=today.year,
            name=f"bench {run}",
            budget=quota_each * enterprises * 2,
            per_enterprise_cap=quota_each,
            per_team_cap=quota_each,
            valid_from=today.replace(month=1, day=1),
            valid_until=today.replace(month=12, day=31),
            categories=[category],
            actor=staff,
            idempotency_key=f"bench-program-{run}",
        )
        inst = services.institution_apply(
            actor=inst_user, name=f"bench lab {run}", credit_code=f"BENCH{run}".ljust(18, "0")
        )
        inst = services.institution_decide(institution=inst, actor=staff, approve=True)
        offering = services.offering_create(
            institution=inst, actor=inst_user, category=category, name="bench", price=per_order
        )
        users = []
        for i in range(enterprises):
            ent = Enterprise.objects.create(
                credit_code=f"B{run}{i:09d}"[:18], name=f"bench {run} {i}"
            )
            user = User.objects.create_user(
                f"bench_{run}_{i}", role=Role.ENTERPRISE, enterprise=ent
            )
            app = services.quota_apply(
                program=program,
                enterprise=ent,
                actor=user,
                amount=quota_each,
                applicant_facts={"registered_in_shanghai": True, "is_tsme": True},
            )
            services.quota_approve(
                application=app,
                actor=staff,
                amount=quota_each,
                idempotency_key=f"bench-q-{run}-{i}",
            )
            users.append(user)
        created = ServiceOrder.objects.bulk_create(
            ServiceOrder(
                program=program,
                enterprise=users[i % enterprises].enterprise,
                institution=inst,
                offering=offering,
                contract_amount=per_order,
                order_date=today,
                start_date=today,
                end_date=today,
                created_by=users[i % enterprises],
            )
            for i in range(orders)
        )
        ids = (
            [o.pk for o in created]
            if created[0].pk
            else list(
                ServiceOrder.objects.filter(program=program)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
        )
        connections.close_all()
        ctx = mp.get_context("fork")
        barrier, results = ctx.Barrier(clients + 1), ctx.Queue()
        procs = [
            ctx.Process(target=_client, args=(ids[c::clients], barrier, results))
            for c in range(clients)
        ]
        for p in procs:
            p.start()
        barrier.wait()
        start = time.perf_counter()
        outcomes = [results.get() for _ in procs]
        elapsed = time.perf_counter() - start
        for p in procs:
            p.join()
        done = sum(d for d, _ in outcomes)
        refused = sum(r for _, r in outcomes)
        b = selectors.program_balances(program)
        violations = []
        if not selectors.budget_identity_holds(program):
            violations.append("budget identity")
        if selectors.negative_accounts(program):
            violations.append("negative balance")
        if selectors.unbalanced_transactions(program):
            violations.append("unbalanced transaction")
        self.stdout.write(
            f"{clients} clients, {orders} orders over {enterprises} enterprises: {done} applied, "
            f"{refused} refused in {elapsed:.2f}s = {done / elapsed:.0f} applications/s; "
            f"committed {b['committed']}, quota left {b['quota']}; "
            f"invariant violations: {', '.join(violations) or 'none'}"
        )
        if violations:
            raise CommandError("invariants violated")
