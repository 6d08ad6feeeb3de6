"""Random sequences of voucher operations (hypothesis): after every step the
budget identity holds, no account is negative and every transaction balances.
Refused operations (over budget, over quota, wrong state) must change nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from kechuang.errors import KechuangError
from kechuang.vouchers import selectors, services
from kechuang.vouchers.models import Claim, ServiceOrder
from kechuang.vouchers.tests import factories as f

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("60000"), places=2)


class VoucherMachine(RuleBasedStateMachine):
    staff = users = inst_user = offer = None  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.prog = f.program(self.staff, budget="100000.00", per_enterprise_cap="70000.00")
        self.keys: list[tuple[str, dict]] = []

    def _try(self, call, **kw):
        before = selectors.program_balances(self.prog)
        try:
            return call(**kw)
        except KechuangError:
            assert selectors.program_balances(self.prog) == before
            return None

    @rule(who=st.integers(0, 1), amount=amounts)
    def issue(self, who, amount):
        user = self.users[who]
        app = services.quota_apply(
            program=self.prog,
            enterprise=user.enterprise,
            actor=user,
            amount=amount,
            applicant_facts=f.ELIGIBLE,
        )
        key = f.key("q")
        self._try(
            services.quota_approve,
            application=app,
            actor=self.staff,
            amount=amount,
            idempotency_key=key,
        )

    @rule(who=st.integers(0, 1), amount=amounts)
    def spend(self, who, amount):
        user = self.users[who]
        order = f.order(self.prog, user, self.offer, amount)
        key = f.key("o")
        done = self._try(services.order_voucher_apply, order=order, actor=user, idempotency_key=key)
        # A refused request leaves no trace, so its key may still be used later;
        # only keys that moved money are replayed.
        if done is not None:
            self.keys.append((key, {"order": order, "actor": user}))

    @rule(data=st.data())
    def replay(self, data):
        if not self.keys:
            return
        key, kw = data.draw(st.sampled_from(self.keys))
        before = selectors.program_balances(self.prog)
        self._try(services.order_voucher_apply, idempotency_key=key, **kw)
        assert selectors.program_balances(self.prog) == before

    def _orders(self, status):
        return list(ServiceOrder.objects.filter(program=self.prog, status=status).order_by("pk"))

    @rule(data=st.data())
    def deliver_and_claim(self, data):
        orders = self._orders("voucher_applied")
        if orders:
            order = data.draw(st.sampled_from(orders))
            services.order_deliver(order=order, actor=self.inst_user, upload=f.pdf())
            services.claim_submit(order=order, actor=self.inst_user)

    @rule(data=st.data(), approve=st.booleans())
    def decide_claim(self, data, approve):
        claims = list(
            Claim.objects.filter(order__program=self.prog, status="submitted").order_by("pk")
        )
        if claims:
            claim = data.draw(st.sampled_from(claims))
            if approve:
                services.claim_approve(claim=claim, actor=self.staff, idempotency_key=f.key("c"))
            else:
                services.claim_reject(claim=claim, actor=self.staff, reason="材料不全")

    @rule(data=st.data())
    def cancel(self, data):
        orders = self._orders("voucher_applied") + self._orders("draft")
        if orders:
            order = data.draw(st.sampled_from(orders))
            services.order_cancel(order=order, actor=order.created_by, idempotency_key=f.key("x"))

    @rule()
    def settle(self):
        self._try(
            services.settlement_batch_create,
            program=self.prog,
            actor=self.staff,
            idempotency_key=f.key("s"),
        )

    @invariant()
    def budget_identity(self):
        b = selectors.program_balances(self.prog)
        assert b["budget"] == self.prog.budget == sum(b[k] for k in selectors.POTS)

    @invariant()
    def nothing_negative_and_every_transaction_balanced(self):
        assert not selectors.negative_accounts(self.prog)
        assert not selectors.unbalanced_transactions(self.prog)

    @invariant()
    def each_quota_within_the_programs_cap(self):
        for user in self.users:
            assert services.issued_to(self.prog, user.enterprise) <= self.prog.per_enterprise_cap

    def teardown(self):
        # Every end state also survives the year-end expiry with the identity intact.
        services.quota_expire(program=self.prog, today=self.prog.valid_until + dt.timedelta(days=1))
        b = selectors.program_balances(self.prog)
        assert b["quota"] == 0
        assert sum(b[k] for k in selectors.POTS) == self.prog.budget


@pytest.mark.django_db
def test_random_operation_sequences_keep_the_ledger_consistent(
    staff_zhang, ent_alice, ent_bob, inst_lab
):
    lab = f.institution(staff_zhang, inst_lab)
    VoucherMachine.staff = staff_zhang
    VoucherMachine.users = [ent_alice, ent_bob]
    VoucherMachine.inst_user = inst_lab
    VoucherMachine.offer = f.offering(lab, inst_lab)
    run_state_machine_as_test(
        VoucherMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
