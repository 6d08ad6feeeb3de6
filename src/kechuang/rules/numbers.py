"""Numbers as a decision hands them out: JSON-ready, and exact where a float is not."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from fractions import Fraction
from typing import Any


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


def dumps_exact(value: Any, **kwargs: Any) -> str:
    """``json.dumps``, but an ``ExactFloat`` is written as its exact decimal, not its float.

    The json module writes every float through ``float.__repr__``; a placeholder string
    stands in for each exact number and is replaced by its text afterwards.
    """
    marker = uuid.uuid4().hex
    texts: dict[str, str] = {}

    def mark(v: Any) -> Any:
        if isinstance(v, ExactFloat):
            token = f"{marker}:{len(texts)}"
            texts[json.dumps(token)] = repr(v)
            return token
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [mark(x) for x in v]
        return v

    text = json.dumps(mark(value), **kwargs)
    for quoted, exact in texts.items():
        text = text.replace(quoted, exact)
    return text
