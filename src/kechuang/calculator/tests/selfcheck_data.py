"""Alice's company as the commission's register knows it in mid-2025: first recognised
as a 高新技术企业 in November 2024, a municipal 科技小巨人 the same month, lead unit
of a 2024 上海市科学技术奖 一等奖, credit lists checked. Bob's company has nothing
on the register and its compliance was never checked."""

from __future__ import annotations

import datetime as dt

from kechuang.registry.models import Award, Certification, Enterprise

AS_OF = dt.date(2025, 6, 30)


def put_alice_on_the_register(alice: Enterprise) -> Enterprise:
    Certification.objects.create(
        enterprise=alice,
        kind="hte",
        number="GR202431000001",
        valid_from=dt.date(2024, 11, 15),
        valid_to=dt.date(2027, 11, 14),
    )
    Certification.objects.create(
        enterprise=alice,
        kind="little_giant",
        number="XJR2024000001",
        valid_from=dt.date(2024, 11, 15),
        valid_to=dt.date(2027, 11, 14),
    )
    Award.objects.create(
        enterprise=alice,
        kind="shanghai_sci_award",
        grade="一等奖",
        unit_rank=1,
        awarded_on=dt.date(2024, 5, 20),
        title="工业软件关键技术及应用",
    )
    return alice
