"""Workbooks people open in Excel: a text is written as text, never as a formula.

openpyxl stores any string that starts with "=" as a formula. In a registry export, a run's
export or a payment file, such a string comes from whoever typed it (an enterprise's
contact name, an institution's bank account): opened by commission or finance staff it
would run (``=HYPERLINK(…)``, ``=WEBSERVICE(…)``) or show a computed value instead of
what was entered. Writing the cell as a string keeps the value exactly, so an export
still imports back unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import WriteOnlyCell


def text_cell(ws: Any, value: Any) -> Any:
    """``value`` for ``ws.append``: a string as a text cell, anything else as it is."""
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def append(ws: Any, values: Iterable[Any]) -> None:
    """``ws.append(values)`` with every string written as text."""
    ws.append([text_cell(ws, v) for v in values])
