"""Management commands: expiry, the payment file, the ledger check."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from kechuang.errors import KechuangError
from kechuang.vouchers import selectors, services
from kechuang.vouchers.management.commands import vouchers_bench
from kechuang.vouchers.models import ServiceOrder
from kechuang.vouchers.tests import factories as f


def test_vouchers_expire_returns_unused_quota_of_ended_programs(prog, staff_zhang, ent_alice):
    f.issue(prog, staff_zhang, ent_alice, "1000")
    out = StringIO()
    call_command("vouchers_expire", today=prog.valid_until + dt.timedelta(days=1), stdout=out)
    assert "1 accounts, 1000.00 yuan returned" in out.getvalue()
    assert selectors.program_balances(prog)["quota"] == 0
    call_command(
        "vouchers_expire", today=prog.valid_until + dt.timedelta(days=2), stdout=StringIO()
    )
    assert selectors.program_balances(prog)["unallocated"] == prog.budget


def test_vouchers_expire_goes_on_past_a_program_it_cannot_expire(
    prog, staff_zhang, ent_alice, monkeypatch
):
    other = f.program(staff_zhang)
    f.issue(other, staff_zhang, ent_alice, "500")
    real = services.quota_expire

    def refuse_the_first(*, program, **kw):
        if program.pk == prog.pk:
            raise KechuangError("refused for the test", "program")
        return real(program=program, **kw)

    monkeypatch.setattr(services, "quota_expire", refuse_the_first)
    later = max(prog.valid_until, other.valid_until) + dt.timedelta(days=1)
    with pytest.raises(CommandError, match="refused for the test"):
        call_command("vouchers_expire", today=later, stdout=StringIO())
    assert selectors.program_balances(other)["quota"] == 0


def test_vouchers_settlement_writes_the_payment_file(
    prog, staff_zhang, ent_alice, inst_lab, offer, tmp_path
):
    f.issue(prog, staff_zhang, ent_alice, "1000")
    order = services.order_voucher_apply(
        order=f.order(prog, ent_alice, offer, "100"), actor=ent_alice, idempotency_key="o"
    )
    services.order_deliver(order=order, actor=inst_lab, upload=f.pdf())
    services.claim_approve(
        claim=services.claim_submit(order=order, actor=inst_lab),
        actor=staff_zhang,
        idempotency_key="c",
    )
    batch = services.settlement_batch_create(program=prog, actor=staff_zhang, idempotency_key="s")
    target = tmp_path / "pay.xlsx"
    call_command("vouchers_settlement", batch.pk, output=target, stdout=StringIO())
    assert target.read_bytes()[:2] == b"PK"


def test_vouchers_check_reports_a_consistent_ledger(prog):
    out = StringIO()
    call_command("vouchers_check", stdout=out)
    assert "ok" in out.getvalue()


def test_vouchers_demo_builds_a_program_once(staff_zhang, inst_lab, ent_alice, ent_bob):
    from kechuang.vouchers.models import Claim, Program

    call_command("vouchers_demo", stdout=StringIO())
    out = StringIO()
    call_command("vouchers_demo", stdout=out)
    assert "already present" in out.getvalue()
    program = Program.objects.get()
    assert selectors.budget_identity_holds(program)
    assert Claim.objects.get().status == "submitted"


def test_vouchers_bench_data_applies_cleanly_and_its_check_sees_a_wrong_subsidy(db):
    bench = vouchers_bench.prepare(orders=6, enterprises=3, with_tokens=True)
    assert len(bench.order_ids) == 6 and set(bench.tokens) == set(bench.order_ids)
    out: list = []
    orders = [(pk, bench.users[pk]) for pk in bench.order_ids]
    vouchers_bench._service_client(orders, _NoWait(), out)
    assert out == [(6, 0)]
    assert vouchers_bench.violations(bench.program) == []
    run = vouchers_bench.Run(seconds=1.0, done=6, refused=0, client_cpu=0.006, backends_cpu=0.003)
    assert vouchers_bench.cpu_line(run) == (
        "clients 1.00 ms, the run's PostgreSQL backends 0.50 ms; total 1.50 ms"
    )
    # An order whose subsidy differs from its commitment is what the check is for.
    ServiceOrder.objects.filter(pk=bench.order_ids[0]).update(subsidy_amount="1.00")
    assert "committed ≠ sum of order subsidies" in vouchers_bench.violations(bench.program)


class _NoWait:
    def wait(self) -> None:
        pass
