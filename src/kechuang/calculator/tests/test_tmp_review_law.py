from decimal import Decimal
import datetime as dt
import pytest
from kechuang.calculator import reforms
from kechuang.calculator.tests.test_law_publication import (  # noqa
    NEW_YEAR, VOUCHER_RATIO, publish, in_force_value, old_ratio, _media,
)


@pytest.mark.django_db
def test_temporary_inside_open_ended(staff_zhang, admin_root, old_ratio):
    def reform(value: Decimal, as_of):
        return reforms.reform_create(
            policy_id="voucher", name=f"比例 {value}", overrides={VOUCHER_RATIO: str(value)},
            actor=staff_zhang, as_of=as_of,
        )
    lasting, temporary = (old_ratio + 1) / 2, (old_ratio + 3) / 4
    # open-ended from NEW_YEAR, then a temporary value from NEW_YEAR+100 to +180
    publish(reform(lasting, NEW_YEAR), admin_root)
    publish(reform(temporary, NEW_YEAR), admin_root,
            effective_from=NEW_YEAR + dt.timedelta(days=100),
            effective_until=NEW_YEAR + dt.timedelta(days=180))
    assert in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR + dt.timedelta(days=10)) == lasting
    assert in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR + dt.timedelta(days=120)) == temporary
    got = in_force_value("voucher", VOUCHER_RATIO, NEW_YEAR + dt.timedelta(days=200))
    assert got == lasting, (got, lasting, old_ratio)
