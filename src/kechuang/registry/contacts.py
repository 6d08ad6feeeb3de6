"""What a contact phone number and e-mail address must look like.

The e-mail address is where 免申即享 notices go: one that cannot be an address would
lose them silently, so it is refused when entered (form, API or import), naming the field.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# Digits with the separators people write (+86 21 5555-0101, (021) 55550101, 转 123).
_PHONE = re.compile(r"^\+?[0-9 ()\-]+((转|ext\.?|x)\s*[0-9]+)?$", re.IGNORECASE)
_MIN_DIGITS = 5


def validate_contact_phone(value: str) -> None:
    if value and (not _PHONE.match(value) or sum(c.isdigit() for c in value) < _MIN_DIGITS):
        raise ValidationError(
            "不是电话号码（数字，可含 + - ( ) 空格与分机）/ not a phone number (digits, "
            "with + - ( ), spaces and an extension allowed)",
            code="invalid_phone",
        )


def validate_contact_email(value: str) -> None:
    if value:
        try:
            validate_email(value)
        except ValidationError:
            raise ValidationError(
                "不是电子邮箱地址 / not an e-mail address", code="invalid_email"
            ) from None
