"""Numbers as a decision hands them out: JSON-ready, and exact where a float is not."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction


class ExactFloat(float):
    """A float that also keeps the exact decimal it stands for.

    Beyond about 15 significant digits a binary float cannot hold an amount to the fen
    (216,049,380,771,604.92 becomes ...604.9375). Compared as a number it is the nearest
    float, as any JSON reader would parse the exact text; ``str``/``repr`` and
    ``dumps_exact`` give the exact decimal (RULES.md 0.5: money outputs are exact).
    """

    decimal: Decimal

    def __new__(cls, value: Decimal) -> ExactFloat:
        obj = super().__new__(cls, value)
        obj.decimal = value
        return obj

    def __repr__(self) -> str:
        return format(self.decimal, "f")

    __str__ = __repr__


def json_number(value: Decimal) -> float:
    """The float of ``value``, an ``ExactFloat`` where the float alone would lose digits."""
    f = float(value)
    return f if Decimal(repr(f)) == value else ExactFloat(value)


def decimal_places(f: Fraction) -> int | None:
    """Digits after the point of ``f``'s finite decimal expansion, None if it repeats."""
    d, twos, fives = f.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    return max(twos, fives) if d == 1 else None


def plain_number(value: Fraction | Decimal | int) -> int | float:
    """JSON-ready: an int when whole, else the float of the exact decimal (an ``ExactFloat``
    where the float alone would lose digits; a repeating decimal has no exact text)."""
    f = Fraction(value)
    if f.denominator == 1:
        return int(f)
    places = decimal_places(f)
    if places is None:
        return float(f)
    return json_number(Decimal(f"{f.numerator * 10**places // f.denominator}e-{places}"))
