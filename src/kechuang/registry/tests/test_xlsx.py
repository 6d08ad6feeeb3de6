"""The streaming .xlsx reader reads what Excel writes: shared strings, date
formats, rich text, float noise, skipped rows."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from kechuang.registry.xlsx import Workbook, XlsxError, prefetched_rows

MAIN = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def excel_like_file() -> io.BytesIO:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(
            "xl/workbook.xml",
            f'<workbook {MAIN} xmlns:r="{REL}"><sheets>'
            '<sheet name="年度财务" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Target="/xl/worksheets/sheet1.xml" Type="x"/></Relationships>',
        )
        z.writestr(
            "xl/sharedStrings.xml",
            f"<sst {MAIN}><si><t>统一社会信用代码</t></si>"
            "<si><r><t>上海</t></r><r><t>甲公司</t></r><rPh><t>しゃんはい</t></rPh></si>"
            "<si><t>R&amp;D</t></si></sst>",
        )
        z.writestr(
            "xl/styles.xml",
            f'<styleSheet {MAIN}><numFmts><numFmt numFmtId="164" formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/>'
            '<numFmt numFmtId="165" formatCode="#,##0.00"/></numFmts>'
            '<cellXfs><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="14"/></cellXfs>'
            "</styleSheet>",
        )
        z.writestr(
            "xl/worksheets/sheet1.xml",
            f'<worksheet {MAIN}><dimension ref="A1:E4"/><sheetData>'
            '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" t="s"><v>2</v></c></row>'
            '<row r="3"><c r="A3" t="s"><v>1</v></c><c r="B3" s="1"><v>44927</v></c>'
            '<c r="C3" s="2"><v>1200000.0999999999</v></c><c r="D3" s="3"><v>45292</v></c>'
            '<c r="E3" t="b"><v>0</v></c></row>'
            '<row r="4" spans="1:5"/>'
            '<row r="5"><c t="s" r="B5"><v>2</v></c><c r="C5" t="n"><v>7</v></c></row>'
            "</sheetData></worksheet>",
        )
    out.seek(0)
    return out


def test_it_reads_shared_strings_dates_and_numbers_as_excel_shows_them():
    wb = Workbook(excel_like_file())
    ((title, path),) = wb.sheets
    assert title == "年度财务"
    rows = list(wb.rows(path))
    assert rows[0] == ("统一社会信用代码", None, "R&D")
    assert rows[1] == ()  # row 2 is not in the file: the row numbers stay right
    assert rows[2] == (
        "上海甲公司",  # rich text joined, phonetic guide dropped
        dt.date(2023, 1, 1),  # a custom date format
        "1200000.1",  # 17 stored digits back to the 15 Excel shows
        dt.date(2024, 1, 1),  # built-in date format 14
        False,
    )
    assert rows[3] == ()
    assert rows[4] == (None, "R&D", "7")  # attributes in another order still read


def test_a_file_that_is_not_a_workbook_is_refused():
    with pytest.raises(XlsxError):
        Workbook(io.BytesIO(b"name,code\n"))


def test_the_reader_in_a_child_process_gives_the_same_rows_in_order():
    source = excel_like_file()
    wb = Workbook(source)
    ((_title, path),) = wb.sheets
    assert list(prefetched_rows(source, path, batch=2)) == list(wb.rows(path))


def test_a_sheet_the_child_process_cannot_read_is_an_error_not_a_hang():
    with pytest.raises(XlsxError):
        list(prefetched_rows(excel_like_file(), "xl/worksheets/missing.xml"))
