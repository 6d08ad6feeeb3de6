"""Everything that reads voucher data for a page, an API, an export or a test:
balances (always summed from ledger entries), the budget identity, statistics,
the chart and the Excel files."""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum

from kechuang import spreadsheets
from kechuang.money import FEN
from kechuang.registry import codes
from kechuang.registry.models import Enterprise
from kechuang.vouchers.ledger import ZERO, balances, held
from kechuang.vouchers.models import (
    Claim,
    LedgerAccount,
    LedgerEntry,
    Program,
    QuotaApplication,
    SettlementBatch,
)

POTS = ("unallocated", "quota", "committed", "payable", "paid")


def account_balance(account: LedgerAccount) -> Decimal:
    """What the account holds (its normal-side balance), summed from its entries."""
    return held(account, balances([account])[account.pk])


def program_balances(program: Program) -> dict[str, Decimal]:
    """Balance per account kind, plus ``budget`` (what the appropriation funded)."""
    rows = (
        LedgerEntry.objects.filter(account__program=program)
        .order_by()
        .values("account__kind", "side")
        .annotate(total=Sum("amount"))
    )
    by_kind: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        sign = 1 if row["side"] == LedgerEntry.Side.DEBIT else -1
        by_kind[row["account__kind"]] += sign * row["total"]
    # SQLite's SUM drops trailing zeros: quantize so 40000 reads 40000.00 everywhere.
    result = {kind: by_kind[kind].quantize(FEN) for kind in POTS}
    result["budget"] = (-by_kind["appropriation"]).quantize(FEN)
    return result


def budget_identity_holds(program: Program) -> bool:
    b = program_balances(program)
    return b["budget"] == program.budget == sum((b[k] for k in POTS), ZERO)


def negative_accounts(program: Program) -> list[LedgerAccount]:
    accounts = list(LedgerAccount.objects.filter(program=program))
    bal = balances(accounts)
    return [a for a in accounts if held(a, bal[a.pk]) < 0]


def unbalanced_transactions(program: Program) -> list[int]:
    rows = (
        LedgerEntry.objects.filter(transaction__program=program)
        .order_by()
        .values("transaction_id", "side")
        .annotate(total=Sum("amount"))
    )
    net: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        net[row["transaction_id"]] += row["total"] if row["side"] == "debit" else -row["total"]
    return [tx for tx, v in net.items() if v != 0]


def quota_balance(program: Program, enterprise: Enterprise) -> Decimal:
    account = LedgerAccount.objects.filter(
        program=program, kind="quota", enterprise=enterprise
    ).first()
    return account_balance(account) if account else ZERO


def enterprise_quotas(enterprise: Enterprise) -> list[dict[str, Any]]:
    """The enterprise's voucher accounts: issued, left, committed per program."""
    result = []
    for program in Program.objects.filter(applications__enterprise=enterprise).distinct():
        issued = (
            QuotaApplication.objects.filter(
                program=program, enterprise=enterprise, status="approved"
            ).aggregate(t=Sum("approved_amount"))["t"]
            or ZERO
        ).quantize(FEN)
        result.append(
            {"program": program, "issued": issued, "left": quota_balance(program, enterprise)}
        )
    return result


def ledger_entries(program: Program) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(transaction__program=program)
        .select_related("transaction", "account", "transaction__actor")
        .order_by("transaction_id", "id")
    )


def program_statistics(
    program: Program, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> dict[str, Any]:
    """Issued and redeemed amounts, by industry, street and institution.

    Issued = quota approved (by decision date); redeemed = claims approved or paid
    (by decision date); the redemption rate is redeemed / issued."""
    apps = QuotaApplication.objects.filter(program=program, status="approved").select_related(
        "enterprise"
    )
    # From the claims themselves: filtering orders by claims__… once per date would join
    # the claims once per filter and count an order's claim once per pair of its claims.
    claims = Claim.objects.filter(
        order__program=program, status__in=["approved", "paid"]
    ).values(
        "amount",
        "order__enterprise__industry_code",
        "order__enterprise__street",
        "order__institution__name",
    )
    if date_from:
        apps = apps.filter(decided_at__date__gte=date_from)
        claims = claims.filter(decided_at__date__gte=date_from)
    if date_to:
        apps = apps.filter(decided_at__date__lte=date_to)
        claims = claims.filter(decided_at__date__lte=date_to)

    def group() -> dict[str, dict[str, Any]]:
        return defaultdict(lambda: {"issued": ZERO, "redeemed": ZERO, "enterprises": set()})

    industry, street, institution = group(), group(), group()
    issued = ZERO
    enterprises = set()
    for app in apps:
        issued += app.approved_amount
        enterprises.add(app.enterprise_id)
        label = industry_group(app.enterprise.industry_code)
        for table, key in ((industry, label), (street, app.enterprise.street or "—")):
            table[key]["issued"] += app.approved_amount
            table[key]["enterprises"].add(app.enterprise_id)
    redeemed = ZERO
    for row in claims:
        amount = row["amount"]
        redeemed += amount
        industry[industry_group(row["order__enterprise__industry_code"])]["redeemed"] += amount
        street[row["order__enterprise__street"] or "—"]["redeemed"] += amount
        institution[row["order__institution__name"]]["redeemed"] += amount

    def rows(table: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "key": k,
                "issued": v["issued"],
                "redeemed": v["redeemed"],
                "enterprises": len(v["enterprises"]),
                "rate": rate(v["redeemed"], v["issued"]),
            }
            for k, v in sorted(table.items(), key=lambda kv: (-kv[1]["redeemed"], kv[0]))
        ]

    return {
        "program": program.pk,
        "date_from": date_from,
        "date_to": date_to,
        "enterprises_issued": len(enterprises),
        "amount_issued": issued,
        "amount_redeemed": redeemed,
        "redemption_rate": rate(redeemed, issued),
        "by_industry": rows(industry),
        "by_street": rows(street),
        "by_institution": rows(institution),
    }


def industry_group(code: str) -> str:
    """Group by the GB/T 4754 division (2 digits) and its Chinese name."""
    if not code:
        return "—"
    return f"{code[:2]} {codes.industry_codes().get(code[:2], '')}".strip()


def rate(part: Decimal, whole: Decimal) -> Decimal | None:
    """A ratio to 4 decimals for display (None when nothing was issued)."""
    if not whole:
        return None
    return (part / whole).quantize(Decimal("0.0001"))


def statistics_chart_png(stats: dict[str, Any]) -> bytes:
    """A bar chart of issued and redeemed amounts by institution and street (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.subplots()
    rows = stats["by_street"][:12]
    labels = [r["key"] for r in rows] or ["—"]
    issued = [float(r["issued"]) / 10000 for r in rows] or [0]  # display only: 万元
    redeemed = [float(r["redeemed"]) / 10000 for r in rows] or [0]
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], issued, width=0.4, label="issued (10k yuan)")
    ax.bar([x + 0.2 for x in xs], redeemed, width=0.4, label="redeemed (10k yuan)")
    ax.set_xticks(list(xs))
    # Street names are Chinese; fall back to their position when no CJK font is installed.
    ax.set_xticklabels([f"#{i + 1}" for i in xs])
    ax.set_title("Vouchers issued and redeemed by street")
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def statistics_workbook(stats: dict[str, Any], program: Program) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "汇总"
    spreadsheets.append(ws, ["项目", str(program)])
    spreadsheets.append(ws, ["发放企业数", stats["enterprises_issued"]])
    spreadsheets.append(ws, ["发放金额（元）", stats["amount_issued"]])
    spreadsheets.append(ws, ["兑付金额（元）", stats["amount_redeemed"]])
    spreadsheets.append(ws, ["兑付率", stats["redemption_rate"]])
    for title, key in (
        ("按行业", "by_industry"),
        ("按街道", "by_street"),
        ("按服务机构", "by_institution"),
    ):
        sheet = wb.create_sheet(title)
        spreadsheets.append(sheet, ["分组", "企业数", "发放（元）", "兑付（元）", "兑付率"])
        for r in stats[key]:
            spreadsheets.append(sheet, [r["key"], r["enterprises"], r["issued"], r["redeemed"], r["rate"]])
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, Decimal):
                    cell.number_format = "#,##0.00"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def settlement_workbook(batch: SettlementBatch) -> bytes:
    """The payment file of a batch: one row per institution to pay, then the claims."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "支付清单"
    spreadsheets.append(ws, ["结算批次", batch.pk, "项目", str(batch.program), "合计（元）", batch.total])
    spreadsheets.append(ws, ["收款单位", "统一社会信用代码", "开户银行", "银行账号", "金额（元）", "兑付笔数"])
    claims = batch.claims.select_related("institution", "order", "order__enterprise").order_by(
        "institution_id", "pk"
    )
    per_inst: dict[int, list] = defaultdict(list)
    for c in claims:
        per_inst[c.institution_id].append(c)
    for items in per_inst.values():
        inst = items[0].institution
        spreadsheets.append(ws,
            [
                inst.name,
                inst.credit_code,
                inst.bank_name,
                inst.bank_account,
                sum((c.amount for c in items), ZERO),
                len(items),
            ]
        )
    detail = wb.create_sheet("兑付明细")
    spreadsheets.append(detail,
        ["兑付申请", "订单", "企业", "服务机构", "合同金额（元）", "补贴比例", "兑付金额（元）"]
    )
    for c in claims:
        spreadsheets.append(detail,
            [
                c.pk,
                c.order_id,
                c.order.enterprise.name,
                c.institution.name,
                c.order.contract_amount,
                c.order.ratio,
                c.amount,
            ]
        )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def pending_counts() -> dict[str, int]:
    from kechuang.vouchers.models import Claim, Institution

    return {
        "institutions": Institution.objects.filter(status="pending").count(),
        "applications": QuotaApplication.objects.filter(status="submitted").count(),
        "claims": Claim.objects.filter(status="submitted").count(),
        "to_settle": Claim.objects.filter(status="approved", batch__isnull=True).count(),
    }
