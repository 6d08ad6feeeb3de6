"""What a contact phone number and e-mail address must look like.

The e-mail address is where 免申即享 notices go: one that cannot be an address would
lose them silently, so it is refused when entered (form, API or import), naming the field.
A value already stored is not checked again when other fields change.
"""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# One number: digits with the separators people write (+86 21 5555-0101, (021) 55550101,
# 转 123); a cell may hold several, separated by / 、 , or ;.
_NUMBER = re.compile(r"\+?[0-9 ()\-]+((转|ext\.?|x)\s*[0-9]+)?", re.IGNORECASE)
_SEPARATORS = re.compile(r"\s*[/、,;]\s*")
_MIN_DIGITS = 5


def validate_contact_phone(value: str) -> None:
    if not value:
        return
    # Full-width digits and brackets (（021）５５５５) are the same number.
    numbers = _SEPARATORS.split(unicodedata.normalize("NFKC", value).strip())
    if value != value.strip() or not all(
        _NUMBER.fullmatch(n) and sum(c.isdigit() for c in n) >= _MIN_DIGITS for n in numbers
    ):
        raise ValidationError(
            "不是电话号码（数字，可含 + - ( ) 空格与分机，多个号码用 / 、分隔）/ not a phone "
            "number (digits, with + - ( ), spaces and an extension; several separated by /)",
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
