"""Reading and validating registry files (.xlsx, .csv) before anything is written.

A file is checked whole: every bad cell and row is reported (sheet, row number
as the spreadsheet shows it, column, value, reason in Chinese and English),
and ``registry.services.registry_import`` writes nothing unless there is none.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import multiprocessing
import os
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from openpyxl import Workbook
from stdnum.cn import uscc
from stdnum.exceptions import InvalidChecksum, InvalidLength

from kechuang import spreadsheets
from kechuang.errors import KechuangError
from kechuang.money import parse_yuan
from kechuang.registry import codes, xlsx
from kechuang.registry.columns import SHEETS, Col, Sheet, sheet_named
from kechuang.registry.contacts import validate_contact_email, validate_contact_phone
from kechuang.registry.models import IPAsset

Progress = Callable[[int], None]


@dataclass(frozen=True)
class RowError:
    sheet: str
    row: int  # 1 = the header row, as the spreadsheet numbers it
    column: str
    value: str
    reason: str  # "中文 / English"


@dataclass
class Table:
    """One sheet (or CSV file) being read: its header is checked, its rows
    are parsed lazily, and every problem goes to the shared error list."""

    sheet: Sheet
    title: str
    columns: list[Col]  # the columns the file has, in file order
    rows: Iterator[tuple[int, dict[str, Any]]]  # (row number, clean record)


# --- cell parsers: each returns the clean value or raises ValueError(reason) ----

_TRUE = {"是", "true", "yes", "y", "1", "t", "√", "有"}
_FALSE = {"否", "false", "no", "n", "0", "f", "×", "无"}
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number or code Excel stored as a number
    return str(value).strip()


@lru_cache(maxsize=1 << 18)
def _credit_code(text: str) -> str:
    code = uscc.compact(text).upper()
    try:
        return uscc.validate(code)
    except InvalidLength:
        raise ValueError("统一社会信用代码应为18位 / a credit code has 18 characters") from None
    except InvalidChecksum:
        raise ValueError("统一社会信用代码校验位错误 / credit code check digit is wrong") from None
    except Exception:
        raise ValueError("统一社会信用代码格式错误 / credit code is malformed") from None


def parse_credit_code(value: Any) -> str:
    # Cached on the cell text: the fiscal-year sheet repeats each code every year.
    return _credit_code(_text(value))


def parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _text(value)
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("日期无法识别，请用 YYYY-MM-DD / not a date, use YYYY-MM-DD")


def parse_money(value: Any) -> Decimal:
    # Fast path for the plain decimal text the xlsx reader gives for numbers.
    if value.__class__ is str:
        try:
            amount = Decimal(value)
        except InvalidOperation:
            pass
        else:
            exact = amount.is_finite() and amount.as_tuple().exponent >= -2
            if exact and amount.adjusted() < MONEY_DIGITS:
                if amount < 0:
                    raise ValueError("金额不能为负数 / an amount cannot be negative")
                return amount.quantize(_FEN)
    try:
        amount = parse_yuan(value)
    except KechuangError as exc:
        raise ValueError(exc.message) from None
    if amount is None:
        raise ValueError("不是金额 / not an amount")
    if amount < 0:
        raise ValueError("金额不能为负数 / an amount cannot be negative")
    if amount.adjusted() >= MONEY_DIGITS:
        raise ValueError("金额过大 / the amount is too large")
    return amount


_FEN = Decimal("0.01")
#: Integer digits the registry's amount columns hold (DECIMAL(20, 2)).
MONEY_DIGITS = 18
#: Integer digits of a head count column (DECIMAL(12, 2)); counts fit an int32 besides.
STAFF_DIGITS = 10


def parse_staff(value: Any) -> Decimal:
    # 全年月平均数: an average may have decimals; two are kept.
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(_text(value))
    except InvalidOperation:
        raise ValueError("不是数字 / not a number") from None
    if not number.is_finite():
        raise ValueError("不是数字 / not a number")
    if number and number.adjusted() >= STAFF_DIGITS:
        # More than any column holds (1e999999999 could not even be rounded).
        raise ValueError("数字过大 / the number is too large")
    if number < 0:
        raise ValueError("人数不能为负数 / a head count cannot be negative")
    if number != number.quantize(Decimal("0.01")):
        raise ValueError("人数最多两位小数 / at most two decimals")
    return number.quantize(Decimal("0.01"))


def parse_count(value: Any) -> int:
    number = parse_staff(value)
    if number != number.to_integral_value():
        raise ValueError("应为整数 / must be a whole number")
    if number > 2**31 - 1:
        raise ValueError("数字过大 / the number is too large")
    return int(number)


def parse_year(value: Any) -> int:
    year = parse_count(value)
    if not 1900 <= year <= 2100:
        raise ValueError("年度应为四位年份 / a year has four digits (1900–2100)")
    return year


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("应为 是/否 / must be yes or no (是/否, true/false, 1/0)")


def parse_industry(value: Any) -> str:
    text = _text(value)
    # Excel drops the leading zero of "01"…"09"; codes have 2 or 4 digits (or a 3-digit group).
    if text.isdigit() and len(text) == 1:
        text = "0" + text
    if text not in codes.industry_codes():
        raise ValueError("未知的国民经济行业分类代码 / unknown industry code (GB/T 4754-2017)")
    return text


_CHOICES: dict[str, dict[str, str]] = {
    "ip_type": {
        **{code: code for code in codes.IP_CLASS},
        **codes.IP_TYPE_BY_NAME,
    },
    "ip_status": {
        **{s.value: s.value for s in IPAsset.Status},
        **{str(s.label): s.value for s in IPAsset.Status},
    },
    "certification": {
        **{code: code for code, _name in codes.CERTIFICATIONS},
        **codes.CERTIFICATION_BY_NAME,
        "高企": "hte",
        "科小": "tsme",
        "小巨人": "little_giant",
    },
}


def _choice(table: str) -> Callable[[Any], str]:
    options = _CHOICES[table]

    def parse(value: Any) -> str:
        text = _text(value)
        if text in options:
            return options[text]
        if text.lower() in options:
            return options[text.lower()]
        shown = "、".join(k for k in options if not k.isascii())
        raise ValueError(f"未知的取值，可选：{shown} / unknown value")

    return parse


def parser_for(col: Col) -> Callable[[Any], Any]:
    if col.kind == "choice":
        return _choice(col.choices)
    if col.kind in ("text", "phone", "email"):
        check = {"phone": validate_contact_phone, "email": validate_contact_email}.get(col.kind)

        def parse_text(value: Any) -> str:
            text = _text(value)
            if "\x00" in text:
                raise ValueError("含有 NUL 字符 / holds a NUL character")
            if col.max_length and len(text) > col.max_length:
                raise ValueError(f"超过{col.max_length}个字符 / longer than {col.max_length}")
            if check is not None:
                try:
                    check(text)
                except ValidationError as exc:
                    raise ValueError(exc.messages[0]) from None
            return text

        return parse_text
    return {
        "credit_code": parse_credit_code,
        "date": parse_date,
        "money": parse_money,
        "staff": parse_staff,
        "count": parse_count,
        "year": parse_year,
        "bool": parse_bool,
        "industry": parse_industry,
    }[col.kind]


def plain_number(value: Decimal) -> str:
    """A head count as people write it: 20, 12.5 (not 20.00, not 2E+1)."""
    return format(value.normalize(), "f")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


# --- reading files ---------------------------------------------------------


def _iter_csv(source: Any) -> Iterator[tuple]:
    if isinstance(source, str | Path):
        handle: IO[str] = open(source, encoding="utf-8-sig", newline="")  # noqa: SIM115
    else:
        raw = source.read()
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        handle = io.StringIO(text, newline="")
    with handle:
        yield from csv.reader(handle)


def iter_tables(
    *,
    file: Any,
    filename: str,
    errors: list[RowError],
    sheet: str | None = None,
    progress: Progress | None = None,
) -> Iterator[Table]:
    """The tables of a registry file, enterprises first, parsed as they are read.

    ``file`` is a path or a binary file object; ``filename`` decides the
    format (.xlsx or .csv). A CSV holds one entity, chosen by ``sheet`` or by
    its headers. Every problem found is appended to ``errors``; the caller
    decides what to do with the rows (the service writes them inside a
    transaction it rolls back if ``errors`` is not empty at the end). Checks
    needing the database (does an enterprise exist, does an IP number belong
    to another enterprise) are the service's."""
    suffix = Path(filename).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            wb = xlsx.Workbook(file)
        except xlsx.XlsxError as exc:
            errors.append(
                RowError(
                    filename, 0, "", "", f"不是有效的Excel文件 / not a valid .xlsx file ({exc})"
                )
            )
            return
        try:
            found: dict[str, tuple[Sheet, str, str]] = {}
            for title, path in wb.sheets:
                target = sheet_named(title)
                if target is None:
                    errors.append(
                        RowError(
                            title,
                            0,
                            "",
                            "",
                            "未知工作表，应为 企业/年度财务/知识产权/资质 / unknown sheet, "
                            "expected enterprises, fiscal_years, ip, certifications",
                        )
                    )
                elif target.entity in found:
                    errors.append(
                        RowError(title, 0, "", "", "重复的工作表 / the entity appears twice")
                    )
                else:
                    found[target.entity] = (target, title, path)
            # Enterprises first, so that the other sheets can refer to new ones.
            for entity in [s.entity for s in SHEETS if s.entity in found]:
                target, title, path = found[entity]
                rows = xlsx.prefetched_rows(file, path) if _prefetch() else wb.rows(path)
                table = _read_table(errors, target, title, _guarded(rows, errors, title), progress)
                if table is not None:
                    yield table
        finally:
            wb.close()
    elif suffix == ".csv":
        rows = _iter_csv(file)
        try:
            header = next(rows)
        except StopIteration:
            errors.append(RowError(filename, 1, "", "", "文件为空 / the file is empty"))
            return
        except csv.Error as exc:
            errors.append(RowError(filename, 1, "", "", f"CSV 无法读取 / unreadable CSV: {exc}"))
            return
        except UnicodeDecodeError:
            errors.append(
                RowError(filename, 1, "", "", "CSV 文件须为 UTF-8 编码 / a CSV file must be UTF-8")
            )
            return
        target = sheet_named(sheet) if sheet else _guess_sheet(header)
        if target is None:
            errors.append(
                RowError(
                    filename,
                    1,
                    "",
                    "",
                    "无法从表头判断数据类型：表头须含某一数据表的必填列（"
                    + _required_headers("zh")
                    + "）；命令行可用 --sheet 指定 / cannot tell the entity from the headers: "
                    "they must hold one sheet's required columns ("
                    + _required_headers("en")
                    + "); on the command line, --sheet names it",
                )
            )
            return
        rows = _guarded(rows, errors, filename)
        table = _read_table(errors, target, filename, _chain([header], rows), progress)
        if table is not None:
            yield table
    else:
        errors.append(
            RowError(filename, 0, "", "", "仅支持 .xlsx 和 .csv / only .xlsx and .csv files")
        )


def _guarded(rows: Iterator[tuple], errors: list[RowError], title: str) -> Iterator[tuple]:
    """The rows of a sheet; a sheet that turns out unreadable half-way becomes a reported
    problem (so nothing is written) instead of an exception."""
    try:
        yield from rows
    except (
        # A damaged file fails in the zip, in the XML or in a cell's value (a date
        # serial beyond any calendar), and a CSV in its own reader (a field over the
        # size limit): each one is the file's problem, reported, not a server error.
        xlsx.XlsxError, ValueError, IndexError, KeyError, OverflowError,
        zipfile.BadZipFile, zlib.error, csv.Error,
    ) as exc:
        errors.append(
            RowError(title, 0, "", "", f"工作表无法读取 / the sheet cannot be read: {exc}")
        )


def _prefetch() -> bool:
    """Read sheets in a child process (xlsx.prefetched_rows) when there is a
    second core to run it; KECHUANG_IMPORT_PREFETCH=0 turns it off."""
    if os.getenv("KECHUANG_IMPORT_PREFETCH", "1") == "0":
        return False
    # Forking a threaded process (a web server) can copy a lock another thread
    # holds and hang the child: only the single-threaded CLI forks.
    return (
        (os.cpu_count() or 1) > 1
        and threading.active_count() == 1
        and "fork" in multiprocessing.get_all_start_methods()
    )


def _chain(first: list, rest: Iterable) -> Iterator:
    yield from first
    yield from rest


def _required_headers(lang: str) -> str:
    """Each sheet's required columns, as the refusal of an unrecognised CSV lists them."""
    return "; ".join(
        f"{sheet.zh if lang == 'zh' else sheet.entity}: "
        + ", ".join(c.zh if lang == "zh" else c.field for c in sheet.columns if c.required)
        for sheet in SHEETS
    )


def _guess_sheet(header: Iterable[Any]) -> Sheet | None:
    names = {_text(h) for h in header if not _blank(h)}
    lowered = {n.lower() for n in names}
    best, best_score = None, 0
    for sheet in SHEETS:
        headers = sheet.by_header()
        score = sum(1 for n in names | lowered if n in headers)
        # The key columns must be there to call it this entity.
        keys_present = all(
            any(headers.get(n) is c for n in names | lowered) for c in sheet.columns if c.required
        )
        if keys_present and score > best_score:
            best, best_score = sheet, score
    return best


def _read_table(
    errors: list[RowError],
    sheet: Sheet,
    title: str,
    rows: Iterator[tuple],
    progress: Progress | None,
) -> Table | None:
    try:
        header = next(rows)
    except StopIteration:
        return None
    by_header = sheet.by_header()
    columns: list[Col | None] = []
    seen: set[str] = set()
    for raw in header:
        if _blank(raw):
            columns.append(None)
            continue
        name = _text(raw)
        col = by_header.get(name) or by_header.get(name.lower())
        if col is None:
            errors.append(RowError(title, 1, name, name, "未知的列 / unknown column"))
        elif col.field in seen:
            errors.append(RowError(title, 1, name, name, "重复的列 / duplicate column"))
            col = None
        else:
            seen.add(col.field)
        columns.append(col)
    for col in sheet.columns:
        if col.required and col.field not in seen:
            errors.append(
                RowError(
                    title, 1, col.zh, "", f"缺少必需的列 / required column missing ({col.field})"
                )
            )
    present = [c for c in columns if c is not None]
    # Columns with no header at all (not unknown ones, which are reported once).
    headerless = {i for i, raw in enumerate(header) if _blank(raw)}
    parsers = [parser_for(c) if c is not None else None for c in columns]
    records = _records(errors, sheet, title, header, columns, parsers, headerless, rows, progress)
    return Table(sheet=sheet, title=title, columns=present, rows=records)


def _records(
    errors: list[RowError],
    sheet: Sheet,
    title: str,
    header: tuple,
    columns: list[Col | None],
    parsers: list,
    headerless: set[int],
    rows: Iterator[tuple],
    progress: Progress | None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    present = [c for c in columns if c is not None]
    required = [c for c in present if c.required]
    template = dict.fromkeys(c.field for c in present)
    ncols = len(columns)
    keys: dict[tuple, int] = {}
    key_fields = sheet.key
    done = 0
    for number, values in enumerate(rows, start=2):
        done += 1
        if progress and done % 1000 == 0:
            progress(1000)
        # Blank cells leave the template's None (unknown); this loop runs once
        # per cell of a file that may hold millions, so it stays plain.
        record = dict(template)
        failed: set[str] = set()
        filled = False
        for index, value in enumerate(values):
            if value is None or (value.__class__ is str and not value.strip()):
                continue
            filled = True
            col = columns[index] if index < ncols else None
            if col is None:
                if index >= len(header) or index in headerless:
                    errors.append(
                        RowError(
                            title,
                            number,
                            f"#{index + 1}",
                            _show(value),
                            "该列没有表头 / a value in a column without a header",
                        )
                    )
                    failed.add(f"#{index + 1}")
                continue
            try:
                record[col.field] = parsers[index](value)
            except ValueError as exc:
                errors.append(RowError(title, number, col.zh, _show(value), str(exc)))
                failed.add(col.field)
        if not filled:
            continue  # an empty row
        for col in required:
            if record[col.field] is None and col.field not in failed:
                errors.append(
                    RowError(title, number, col.zh, "", "必填项为空 / required value is empty")
                )
                failed.add(col.field)
        ok = not failed
        # Checked even when a cell failed, so the report names every problem of the row.
        problem = _row_problem(sheet, record)
        if problem:
            column, value, reason = problem
            errors.append(RowError(title, number, column, value, reason))
            continue
        if not ok:
            continue
        key = tuple(record.get(k) for k in key_fields)
        if key in keys:
            errors.append(
                RowError(
                    title,
                    number,
                    "/".join(c.zh for c in sheet.columns if c.field in key_fields),
                    "/".join(_show(k) for k in key),
                    f"与第{keys[key]}行重复 / duplicate of row {keys[key]}",
                )
            )
            continue
        keys[key] = number
        yield number, record
    if progress and done % 1000:
        progress(done % 1000)


def _row_problem(sheet: Sheet, record: dict[str, Any]) -> tuple[str, str, str] | None:
    """A rule across cells of one row: (column, value, reason), or None."""
    if sheet.entity == "fiscal_years":
        sci, total = record.get("staff_sci_tech"), record.get("staff_total")
        if sci is not None and total is not None and sci > total:
            return (
                "科技人员数",
                plain_number(sci),
                f"科技人员数大于职工总数（{plain_number(total)}） / S&T staff exceed staff total "
                f"({plain_number(total)})",
            )
    if sheet.entity == "certifications":
        start, end = record.get("valid_from"), record.get("valid_to")
        if start and end and end < start:
            return (
                "有效期至",
                end.isoformat(),
                "有效期至早于发证日期 / valid_to before valid_from",
            )
    if sheet.entity == "ip":
        granted, applied = record.get("grant_date"), record.get("application_date")
        if granted and applied and granted < applied:
            return ("授权日", granted.isoformat(), "授权日早于申请日 / granted before applied")
    return None


# --- the error report as a workbook -----------------------------------------


def error_report_workbook(errors: Iterable[RowError]) -> bytes:
    """The report of a rejected file as an .xlsx (one line per problem)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("错误报告 errors")
    spreadsheets.append(ws, ["工作表 sheet", "行 row", "列 column", "值 value", "原因 reason"])
    for e in errors:
        spreadsheets.append(ws, [e.sheet, e.row, e.column, e.value, e.reason])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()

