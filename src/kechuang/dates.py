"""The days the platform decides on: a date outside them is a typing mistake.

Date arithmetic near the ends of Python's calendar overflows (0001-01-01 minus a
year, 9999-12-31 plus a day); no registry record, policy or audit entry lies there.
"""

from __future__ import annotations

import datetime as dt

from django.core.validators import MaxValueValidator, MinValueValidator

from kechuang.errors import KechuangError

EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2999, 12, 31)

#: For form fields: ``forms.DateField(validators=PLAUSIBLE)``.
PLAUSIBLE = [MinValueValidator(EARLIEST), MaxValueValidator(LATEST)]


def check_day(day: dt.date, field: str) -> dt.date:
    """``day`` itself, or a refusal naming ``field``."""
    if not EARLIEST <= day <= LATEST:
        raise KechuangError(
            f"日期超出范围 / date out of range ({EARLIEST} to {LATEST}): {day}", field
        )
    return day
