"""The registry's file layout: one sheet per entity, each column with its
Chinese and English header, shared by import and export so that an exported
workbook imports back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Col:
    field: str  # model field; also the English header
    zh: str  # Chinese header
    # credit_code | text | phone | email | date | money | staff | count | bool | industry
    # | year | choice
    kind: str
    required: bool = False  # the column must be present and the cell filled
    max_length: int = 0
    choices: str = ""  # for kind=choice: name of the table in codes / models


@dataclass(frozen=True)
class Sheet:
    entity: str  # English sheet name
    zh: str  # Chinese sheet name
    key: tuple[str, ...]  # fields that identify a row (upsert key)
    columns: tuple[Col, ...]

    def by_header(self) -> dict[str, Col]:
        headers: dict[str, Col] = {}
        for col in self.columns:
            headers[col.field.lower()] = col
            headers[col.zh] = col
        return headers


ENTERPRISES = Sheet(
    "enterprises",
    "企业",
    ("credit_code",),
    (
        Col("credit_code", "统一社会信用代码", "credit_code", required=True),
        Col("name", "企业名称", "text", required=True, max_length=200),
        Col("registration_date", "注册成立日期", "date"),
        Col("district", "区", "text", max_length=50),
        Col("street", "街道/镇", "text", max_length=50),
        Col("industry_code", "国民经济行业分类代码", "industry"),
        Col("high_tech_field", "国家重点支持的高新技术领域", "text", max_length=100),
        Col("address", "地址", "text", max_length=200),
        Col("contact_name", "联系人", "text", max_length=50),
        Col("contact_phone", "联系电话", "phone", max_length=30),
        Col("contact_email", "联系邮箱", "email", max_length=100),
        Col("registered_in_mainland", "境内注册", "bool"),
        Col("registered_in_shanghai", "在本市注册", "bool"),
        Col("resident_enterprise", "居民企业", "bool"),
        Col("accounting_sound", "会计核算健全", "bool"),
        Col("audit_based_cit_collection", "查账征收", "bool"),
        Col("tech_field_supported", "属于重点支持领域", "bool"),
        Col("industry_restricted_or_eliminated", "属于限制类/淘汰类", "bool"),
        Col("standards_participation", "参与标准制定", "bool"),
        Col("is_ic_or_machine_tool_enterprise", "集成电路或工业母机企业", "bool"),
        Col("ip_surveyed", "已完成知识产权核查", "bool"),
        Col("compliance_checked", "已完成信用核查", "bool"),
    ),
)

FISCAL_YEARS = Sheet(
    "fiscal_years",
    "年度财务",
    ("credit_code", "year"),
    (
        Col("credit_code", "统一社会信用代码", "credit_code", required=True),
        Col("year", "年度", "year", required=True),
        Col("sales_revenue", "销售收入", "money"),
        Col("total_income", "总收入", "money"),
        Col("high_tech_income", "高新技术产品（服务）收入", "money"),
        Col("rd_expense", "研发费用总额", "money"),
        Col("rd_expense_domestic", "境内研发费用", "money"),
        Col("total_cost_expense", "成本费用支出总额", "money"),
        Col("total_assets", "资产总额", "money"),
        Col("total_liabilities", "负债总额", "money"),
        Col("staff_total", "职工总数", "staff"),
        Col("staff_sci_tech", "科技人员数", "staff"),
        Col("conversions", "科技成果转化数", "count"),
    ),
)

IP_ASSETS = Sheet(
    "ip",
    "知识产权",
    ("number",),
    (
        Col("credit_code", "统一社会信用代码", "credit_code", required=True),
        Col("number", "登记号/专利号", "text", required=True, max_length=64),
        Col("ip_type", "类型", "choice", required=True, choices="ip_type"),
        Col("title", "名称", "text", max_length=200),
        Col("status", "状态", "choice", required=True, choices="ip_status"),
        Col("application_date", "申请日", "date"),
        Col("grant_date", "授权日", "date"),
        Col("expiry_date", "到期日", "date"),
        Col("self_developed", "自主研发", "bool"),
        Col("used_in_earlier_hte_application", "已用于以往高企认定", "bool"),
    ),
)

CERTIFICATIONS = Sheet(
    "certifications",
    "资质",
    ("kind", "number"),
    (
        Col("credit_code", "统一社会信用代码", "credit_code", required=True),
        Col("kind", "资质类型", "choice", required=True, choices="certification"),
        Col("number", "证书编号", "text", required=True, max_length=64),
        Col("valid_from", "发证日期", "date", required=True),
        Col("valid_to", "有效期至", "date"),
    ),
)

SHEETS: tuple[Sheet, ...] = (ENTERPRISES, FISCAL_YEARS, IP_ASSETS, CERTIFICATIONS)


def sheet_named(name: str) -> Sheet | None:
    """The sheet for a workbook sheet name or a --sheet option (Chinese or English)."""
    wanted = name.strip().lower()
    for sheet in SHEETS:
        if wanted in (sheet.entity, sheet.zh):
            return sheet
    return None
