"""Export the registry (or a filtered part) to an .xlsx that imports back.

The workbook has the import layout (registry.columns): one sheet per entity
with Chinese headers, so exporting and re-importing changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from kechuang import spreadsheets
from kechuang.registry.columns import CERTIFICATIONS, ENTERPRISES, FISCAL_YEARS, IP_ASSETS, Sheet
from kechuang.registry.models import Certification, FiscalYear, IPAsset
from kechuang.registry.selectors import enterprise_list

_FORMATS = {"money": "#,##0.00", "date": "yyyy-mm-dd", "staff": "0.##"}


def registry_export(
    *,
    out: str | Path | IO[bytes],
    filters: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write the enterprises matching ``filters`` (the keyword arguments of
    ``selectors.enterprise_list``: search, street, industry_code,
    certification) with their fiscal years, IP and certificates. Returns the
    rows written per sheet."""
    enterprises = enterprise_list(**(filters or {}))
    wb = Workbook(write_only=True)
    counts: dict[str, int] = {}
    ids = enterprises.values("id")
    counts["enterprises"] = _sheet(
        wb, ENTERPRISES, enterprises.values_list(*_fields(ENTERPRISES)), progress
    )
    counts["fiscal_years"] = _sheet(
        wb,
        FISCAL_YEARS,
        FiscalYear.objects.filter(enterprise_id__in=ids)
        .order_by("enterprise__credit_code", "year")
        .values_list(*_fields(FISCAL_YEARS)),
        progress,
    )
    counts["ip"] = _sheet(
        wb,
        IP_ASSETS,
        IPAsset.objects.filter(enterprise_id__in=ids)
        .order_by("enterprise__credit_code", "number")
        .values_list(*_fields(IP_ASSETS)),
        progress,
    )
    counts["certifications"] = _sheet(
        wb,
        CERTIFICATIONS,
        Certification.objects.filter(enterprise_id__in=ids)
        .order_by("enterprise__credit_code", "kind", "valid_from")
        .values_list(*_fields(CERTIFICATIONS)),
        progress,
    )
    wb.save(out)
    return counts


def _fields(sheet: Sheet) -> list[str]:
    return [
        "enterprise__credit_code"
        if c.field == "credit_code" and sheet is not ENTERPRISES
        else c.field
        for c in sheet.columns
    ]


def _sheet(wb: Workbook, sheet: Sheet, rows: Any, progress: Callable[[int], None] | None) -> int:
    ws = wb.create_sheet(sheet.zh)
    spreadsheets.append(ws, [c.zh for c in sheet.columns])
    n = 0
    for values in rows.iterator(chunk_size=2000):
        ws.append([_cell(ws, c.kind, v) for c, v in zip(sheet.columns, values, strict=True)])
        n += 1
        if progress and n % 1000 == 0:
            progress(1000)
    if progress and n % 1000:
        progress(n % 1000)
    return n


def _cell(ws: Any, kind: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if kind == "bool":
        return "是" if value else "否"
    if kind in _FORMATS and isinstance(value, Decimal | dt.date | int):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = _FORMATS[kind]
        return cell
    return spreadsheets.text_cell(ws, value)
