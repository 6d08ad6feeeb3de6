"""A lean streaming reader of .xlsx cell values, for large registry imports.

openpyxl's read-only mode builds an element and a cell per value and, for
sheets written without a ``<dimension>`` (openpyxl's own write-only mode,
many exporters), parses the whole sheet once more just to size it. On a
100,000-enterprise workbook (about nine million cells) that is most of the
import time. This reader streams each sheet's XML and pulls values out of
``<row>``/``<c>`` with regular expressions, so the cost per cell is a regex
match. Numbers are returned as their decimal text (so amounts never pass
through a binary float); cells with a date format become ``datetime.date``.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import posixpath
import re
import zipfile
from collections.abc import Iterator
from html import unescape
from typing import IO, Any
from xml.etree import ElementTree

_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}
_ROW = re.compile(rb"<(?:\w+:)?row\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?row>)", re.S)
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.S)
_FAST_CELL = re.compile(
    rb'<c r="([A-Z]+\d+)"(?: s="(\d+)")?(?: t="(\w+)")?\s*(?:/>|>(?:(<v>)([^<]*)</v>|(.*?))</c>)',
    re.S,
)
_ATTR = re.compile(rb'\b([rts])="([^"]*)"')
_V = re.compile(rb"<(?:\w+:)?v>(.*?)</(?:\w+:)?v>", re.S)
_T = re.compile(rb"<(?:\w+:)?t(?:\s[^>]*)?>(.*?)</(?:\w+:)?t>", re.S)
_RPH = re.compile(rb"<(?:\w+:)?rPh\b.*?</(?:\w+:)?rPh>", re.S)
_COL = re.compile(rb"[A-Z]+")
#: Built-in number formats that are dates (ECMA-376 18.8.30).
_DATE_FORMAT_IDS = {14, 15, 16, 17, 18, 19, 20, 21, 22, 27, 30, 36, 45, 46, 47, 50, 57}
_EPOCH = dt.date(1899, 12, 30)  # Excel's 1900 system, past its 1900-02-29 bug


class XlsxError(Exception):
    """The file is not a workbook this reader understands."""


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8")
    return unescape(text) if "&" in text else text


def _number(raw: bytes) -> str:
    """A numeric cell's text. Excel keeps 15 significant digits; some writers
    store the binary float's 17 (0.30000000000000004), so round those back
    to the 15 the user saw."""
    text = raw.decode("ascii")
    # Cheap test first: 15 digits need at least 16 characters with a sign or point.
    if len(text) > 16 and sum(ch.isdigit() for ch in text.split("E")[0].split("e")[0]) > 15:
        text = format(float(text), ".15g")
    return text


_COLUMNS: dict[bytes, int] = {}


def _column_index(ref: bytes) -> int:
    """0-based column of a cell reference: b"C12" -> 2 (memoised by letters)."""
    key = ref.rstrip(b"0123456789")
    index = _COLUMNS.get(key)
    if index is None:
        if not key or _COL.fullmatch(key) is None:
            raise XlsxError(f"bad cell reference {ref!r}")
        index = 0
        for ch in key:
            index = index * 26 + ch - 64
        index -= 1
        _COLUMNS[key] = index
    return index


def _is_date_format(code: str) -> bool:
    # Drop quoted text, escapes and [colour]/[$-locale] sections, then look for date parts.
    code = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", code).lower()
    return bool(re.search(r"[ymdhs]", code)) and "general" not in code


class Workbook:
    """Sheets of an .xlsx as (title, iterator of row tuples)."""

    def __init__(self, source: str | IO[bytes] | Any) -> None:
        try:
            self.zip = zipfile.ZipFile(source)
            self.sheets = self._sheets()
            self.shared = self._shared_strings()
            self.date_styles = self._date_styles()
        except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
            raise XlsxError(str(exc)) from exc

    def close(self) -> None:
        self.zip.close()

    def _xml(self, name: str) -> ElementTree.Element | None:
        try:
            return ElementTree.fromstring(self.zip.read(name))
        except KeyError:
            return None

    def _sheets(self) -> list[tuple[str, str]]:
        book = self._xml("xl/workbook.xml")
        rels = self._xml("xl/_rels/workbook.xml.rels")
        if book is None or rels is None:
            raise XlsxError("no xl/workbook.xml")
        targets = {r.get("Id"): r.get("Target", "") for r in rels.findall("rel:Relationship", _NS)}
        sheets = []
        for sheet in book.findall("m:sheets/m:sheet", _NS):
            target = targets[sheet.get(f"{{{_NS['r']}}}id")]
            path = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
            sheets.append((sheet.get("name", ""), posixpath.normpath(path)))
        return sheets

    def _shared_strings(self) -> list[str]:
        names = set(self.zip.namelist())
        if "xl/sharedStrings.xml" not in names:
            return []
        strings = []
        tag_si = f"{{{_NS['m']}}}si"
        tag_rph = f"{{{_NS['m']}}}rPh"
        tag_t = f"{{{_NS['m']}}}t"
        with self.zip.open("xl/sharedStrings.xml") as f:
            for _event, el in ElementTree.iterparse(f):
                if el.tag == tag_si:
                    for ph in el.findall(tag_rph):
                        el.remove(ph)  # phonetic guides are not part of the value
                    strings.append("".join(t.text or "" for t in el.iter(tag_t)))
                    el.clear()
        return strings

    def _date_styles(self) -> set[int]:
        styles = self._xml("xl/styles.xml")
        if styles is None:
            return set()
        custom = {
            int(f.get("numFmtId", "0")): f.get("formatCode", "")
            for f in styles.findall("m:numFmts/m:numFmt", _NS)
        }
        dates = set()
        for index, xf in enumerate(styles.findall("m:cellXfs/m:xf", _NS)):
            fmt = int(xf.get("numFmtId", "0"))
            if fmt in _DATE_FORMAT_IDS or (fmt in custom and _is_date_format(custom[fmt])):
                dates.add(index)
        return dates

    def _cells(self, body: bytes) -> list[Any]:
        # Fast path: the attribute layout Excel and openpyxl write (r, then s, then t).
        # Any other layout in the row falls back to the general parse below.
        fast = _FAST_CELL.findall(body)
        if len(fast) == body.count(b"<c ") + body.count(b":c "):
            cells = [
                (ref, style or None, kind or b"n", v if plain else inner, bool(plain))
                for ref, style, kind, plain, v, inner in fast
            ]
        else:
            cells = []
            for cell in _CELL.finditer(body):
                attrs = dict(_ATTR.findall(cell.group(1)))
                cells.append(
                    (
                        attrs.get(b"r", b""),
                        attrs.get(b"s"),
                        attrs.get(b"t", b"n"),
                        cell.group(2) or b"",
                        False,
                    )
                )
        values: list[Any] = []
        shared, date_styles = self.shared, self.date_styles
        for ref, style, kind, inner, is_value in cells:
            if ref:
                index = _column_index(ref)
                if index > len(values):
                    values.extend([None] * (index - len(values)))
            if not inner:
                values.append(None)
                continue
            if kind == b"inlineStr":
                values.append(_text(b"".join(_T.findall(_RPH.sub(b"", inner)))))
                continue
            if is_value:
                raw = inner
            else:
                v = _V.search(inner)
                if v is None:
                    values.append(None)
                    continue
                raw = v.group(1)
            if kind == b"s":
                values.append(shared[int(raw)])
            elif kind == b"b":
                values.append(raw == b"1")
            elif kind in (b"str", b"e"):
                values.append(_text(raw))
            elif kind == b"d":
                values.append(dt.date.fromisoformat(raw[:10].decode()))
            elif style is not None and int(style) in date_styles:
                values.append(_EPOCH + dt.timedelta(days=int(float(raw))))
            else:
                values.append(_number(raw))
        return values

    def rows(self, path: str) -> Iterator[tuple]:
        """The sheet's rows as tuples of values (None for an empty cell),
        with empty rows in between kept so that row numbers stay right."""
        expected = 1
        with self.zip.open(path) as f:
            buffer = b""
            while True:
                chunk = f.read(1 << 20)
                buffer += chunk
                end = buffer.rfind(b"</row>") if chunk else len(buffer)
                cut = buffer.find(b">", end) + 1 if chunk and end >= 0 else len(buffer)
                if chunk and end < 0:
                    continue
                block, buffer = buffer[:cut], buffer[cut:]
                for row in _ROW.finditer(block):
                    number = re.search(rb'\br="(\d+)"', row.group(0)[:64])
                    if number:
                        current = int(number.group(1))
                        while expected < current:  # rows the file skips
                            yield ()
                            expected += 1
                    expected += 1
                    body = row.group(1) or b""
                    yield tuple(self._cells(body))
                if not chunk:
                    return


def prefetched_rows(source: Any, path: str, *, batch: int = 2000) -> Iterator[tuple]:
    """``Workbook(source).rows(path)``, read by a child process while the
    caller checks and writes the rows it has already received.

    Reading cells is about half of an import's time and checking them the
    other half, so on a machine with two cores this pipeline roughly halves
    the wall time. The child only reads the file; it never touches the
    database connection it inherits (it leaves with ``os._exit``). Only one
    process reads the file at a time: the parent waits for rows meanwhile."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_produce, args=(source, path, sender, batch), daemon=True)
    child.start()
    sender.close()
    try:
        while True:
            try:
                message = receiver.recv()
            except EOFError:
                raise XlsxError("the reading process stopped unexpectedly") from None
            if message is None:
                return
            if isinstance(message, str):
                raise XlsxError(message)
            yield from message
    finally:
        receiver.close()
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()


def _produce(source: Any, path: str, sender: Any, batch: int) -> None:
    try:
        if hasattr(source, "seek"):
            source.seek(0)
        wb = Workbook(source)
        rows: list[tuple] = []
        for row in wb.rows(path):
            rows.append(row)
            if len(rows) >= batch:
                sender.send(rows)
                rows = []
        sender.send(rows)
        sender.send(None)
    except Exception as exc:  # reported to the parent, which raises it as XlsxError
        sender.send(f"{type(exc).__name__}: {exc}")
    finally:
        sender.close()
