"""Values on the pages: amounts with thousands separators, stored JSON as text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kechuang.web.templatetags.kechuang_web import plain, yuan


@pytest.mark.parametrize(
    "value, shown",
    [
        (45000, "45,000.00"),
        (Decimal("52900000.00"), "52,900,000.00"),
        (Decimal("1234567.5"), "1,234,567.50"),
        (Decimal("-1200"), "-1,200.00"),
        ("3740000.00", "3,740,000.00"),
        (Decimal("0.005"), "0.005"),  # finer than a fen: shown whole, not rounded away
        (None, None),
        ("", ""),
        ("—", "—"),
    ],
)
def test_an_amount_reads_as_people_write_it(value, shown):
    assert yuan(value) == shown


@pytest.mark.parametrize(
    "value, shown",
    [
        ({"pass_mark": "60"}, "pass_mark: 60"),
        ([{"account": "1:committed:1", "side": "debit", "amount": "45000.00"},
          {"account": "1:quota:1", "side": "credit", "amount": "45000.00"}],
         "account: 1:committed:1, side: debit, amount: 45000.00; "
         "account: 1:quota:1, side: credit, amount: 45000.00"),
        (["hte", "tsme"], "hte, tsme"),
        (True, "是"),
        (None, None),
        ("52900000.00", "52900000.00"),
    ],
)
def test_a_stored_value_reads_as_text_not_as_python(value, shown):
    from django.utils import translation

    with translation.override("zh-hans"):
        assert plain(value) == shown


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_dates_read_the_same_in_both_languages(language):
    import datetime as dt

    from django.template import Context, Template
    from django.utils import translation

    with translation.override(language):
        shown = Template("{{ d }} · {{ d|date }} · {{ t }}").render(
            Context({"d": dt.date(2026, 11, 25), "t": dt.datetime(2026, 11, 25, 12, 13)})
        )
    assert shown == "2026-11-25 · 2026-11-25 · 2026-11-25 12:13"
