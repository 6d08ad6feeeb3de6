"""Yuan amounts as ``Decimal`` quantized to the fen (分), never ``float``.

>>> parse_yuan("1,234.5")
Decimal('1234.50')
>>> parse_yuan(12)
Decimal('12.00')
>>> parse_yuan(" ") is None
True
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from kechuang.errors import KechuangError
from kechuang.rules.facts import MAGNITUDE_DIGITS

FEN = Decimal("0.01")


def quantize_yuan(amount: Decimal) -> Decimal:
    """Round to the fen, half-up (the convention for amounts stated in yuan)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def parse_yuan(value: Any, *, field: str | None = None) -> Decimal | None:
    """Parse an amount in yuan; blank is ``None`` (unknown), not zero.

    Accepts Decimal, int, text with thousands separators, and — because Excel
    stores numbers as binary floats — a float, read through its shortest repr
    (``repr(0.1) == '0.1'``) so that a cell showing 0.1 becomes Decimal('0.10').
    Refuses booleans, NaN, infinities and amounts with more than two decimals
    that are not an artefact of float storage.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise KechuangError(f"不是金额 / not an amount: {value!r}", field)
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    else:
        text = str(value).strip().replace(",", "").replace("，", "").replace("¥", "")
        if text == "":
            return None
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise KechuangError(f"不是金额 / not an amount: {value!r}", field) from None
    if not amount.is_finite():
        raise KechuangError(f"不是金额 / not an amount: {value!r}", field)
    if amount and amount.adjusted() > MAGNITUDE_DIGITS:
        # No amount is that large; 1e999999999 cannot even be rounded to the fen.
        raise KechuangError(f"金额过大 / the amount is too large: {value!r}", field)
    with localcontext(prec=MAGNITUDE_DIGITS + 4):
        # Up to 10^30 yuan to the fen: more digits than the default context's 28.
        rounded = quantize_yuan(amount)
    if amount != rounded:
        raise KechuangError(f"金额最多两位小数 / at most two decimals (fen): {value!r}", field)
    return rounded
