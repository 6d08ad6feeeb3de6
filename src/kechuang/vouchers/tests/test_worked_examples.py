"""A district year at 1/100 scale, told as the finance officer would.

The modelled year (普科委〔2023〕5号): 122 enterprises issued ¥3.74 million,
¥2.2203 million redeemed, the ratio going from 50% to 75% on 2022-01-01
(RULES.md §5). Here: three enterprises issued ¥37,400.00, ¥22,203.00
redeemed, one order on each side of the ratio change, one subsidy rounded
down to the fen, one cancelled order and the year-end expiry. The figures
below are worked by hand; every balance is checked after every step.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from kechuang.accounts.models import Role
from kechuang.registry.models import Enterprise
from kechuang.testing import credit_code, make_user
from kechuang.vouchers import selectors, services
from kechuang.vouchers.tests import factories as f


def balances(prog) -> dict[str, D]:
    b = selectors.program_balances(prog)
    assert b["budget"] == prog.budget
    assert sum(b[k] for k in selectors.POTS) == prog.budget
    assert not selectors.negative_accounts(prog)
    assert not selectors.unbalanced_transactions(prog)
    return {k: b[k] for k in selectors.POTS}


def pots(unallocated, quota, committed, payable, paid) -> dict[str, D]:
    return {
        "unallocated": D(unallocated),
        "quota": D(quota),
        "committed": D(committed),
        "payable": D(payable),
        "paid": D(paid),
    }


@pytest.mark.django_db
def test_a_district_year_at_one_hundredth_scale(
    staff_zhang, ent_alice, ent_bob, inst_lab, auditor_li
):
    carol_corp = Enterprise.objects.create(
        credit_code=credit_code("91310107MA1G00003"),
        name="上海卡罗尔智能制造有限公司",
        street="真如镇街道",
        industry_code="3411",
    )
    ent_carol = make_user("ent_carol", Role.ENTERPRISE, carol_corp)

    # The program: ¥50,000 for orders from July 2021 to the end of 2022.
    prog = f.program(
        staff_zhang,
        budget="50000.00",
        per_enterprise_cap="20000.00",
        valid_from=dt.date(2021, 7, 1),
        valid_until=dt.date(2022, 12, 31),
        year=2022,
    )
    assert balances(prog) == pots("50000", "0", "0", "0", "0")

    lab = f.institution(staff_zhang, inst_lab)
    offer = f.offering(lab, inst_lab)

    # Quotas issued: Alice 15,000, Bob 12,400, Carol 10,000 = 37,400.
    for user, amount, day in (
        (ent_alice, "15000", dt.date(2021, 9, 1)),
        (ent_bob, "12400", dt.date(2021, 9, 2)),
        (ent_carol, "10000", dt.date(2021, 9, 3)),
    ):
        f.issue(prog, staff_zhang, user, amount, today=day)
    assert balances(prog) == pots("12600", "37400", "0", "0", "0")

    def spend(user, contract, day):
        order = f.order(prog, user, offer, contract, order_date=day, today=day)
        return services.order_voucher_apply(
            order=order, actor=user, idempotency_key=f.key("o"), today=day
        )

    # Alice, 2021-11-10, before the change: 50% of 10,000.00.
    a1 = spend(ent_alice, "10000.00", dt.date(2021, 11, 10))
    assert (a1.ratio, a1.subsidy_amount, a1.enterprise_pays) == ("0.5", D("5000.00"), D("5000.00"))
    # 50% applies to every order before 2022 (RULES.md 5.3): no start date to show.
    assert a1.ratio_since is None and "普科委〔2023〕5号" in a1.ratio_article
    assert balances(prog) == pots("12600", "32400", "5000", "0", "0")

    # Bob, 2022-03-01, after the change: 75% of 12,000.00.
    b1 = spend(ent_bob, "12000.00", dt.date(2022, 3, 1))
    assert (b1.ratio, b1.subsidy_amount, b1.enterprise_pays) == ("0.75", D("9000.00"), D("3000.00"))
    assert b1.ratio_since == dt.date(2022, 1, 1)
    assert balances(prog) == pots("12600", "23400", "14000", "0", "0")

    # Carol, 2022-05-20: 75% of 10,937.34 is 8,203.005, rounded down to 8,203.00.
    c1 = spend(ent_carol, "10937.34", dt.date(2022, 5, 20))
    assert (c1.subsidy_amount, c1.enterprise_pays) == (D("8203.00"), D("2734.34"))
    assert balances(prog) == pots("12600", "15197", "22203", "0", "0")

    # Alice, 2022-06-01: 75% of 30,000 is 22,500, but only her 10,000 of quota is left.
    a2 = spend(ent_alice, "30000.00", dt.date(2022, 6, 1))
    assert (a2.subsidy_amount, a2.enterprise_pays) == (D("10000.00"), D("20000.00"))
    assert balances(prog) == pots("12600", "5197", "32203", "0", "0")
    # ... and the contract falls through: the commitment goes back to her quota.
    services.order_cancel(
        order=a2, actor=ent_alice, idempotency_key=f.key("x"), today=dt.date(2022, 6, 2)
    )
    assert balances(prog) == pots("12600", "15197", "22203", "0", "0")

    # The lab delivers and claims the three others; staff approve them.
    claims = []
    for order in (a1, b1, c1):
        services.order_deliver(order=order, actor=inst_lab, upload=f.pdf())
        claims.append(services.claim_submit(order=order, actor=inst_lab))
    for claim in claims:
        services.claim_approve(claim=claim, actor=staff_zhang, idempotency_key=f.key("c"))
    assert balances(prog) == pots("12600", "15197", "0", "22203", "0")

    # One settlement batch pays the lab 22,203.00.
    batch = services.settlement_batch_create(
        program=prog, actor=staff_zhang, idempotency_key=f.key("s")
    )
    assert batch.total == D("22203.00")
    assert balances(prog) == pots("12600", "15197", "0", "0", "22203")

    # The program ends: 10,000 + 3,400 + 1,797 of unused quota returns to the budget.
    posted = services.quota_expire(program=prog, actor=staff_zhang, today=dt.date(2023, 1, 1))
    assert sorted(tx.entries.first().amount for tx in posted) == [
        D("1797.00"),
        D("3400.00"),
        D("10000.00"),
    ]
    assert balances(prog) == pots("27797", "0", "0", "0", "22203")

    stats = selectors.program_statistics(prog)
    assert stats["enterprises_issued"] == 3
    assert stats["amount_issued"] == D("37400.00")
    assert stats["amount_redeemed"] == D("22203.00")
    assert stats["redemption_rate"] == D("0.5937")  # 2.2203 / 3.74 in the modelled year
