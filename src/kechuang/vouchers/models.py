"""Innovation vouchers (科技服务券): programs, institutions, quotas, orders, claims,
settlement, and the double-entry ledger that moves the money between them.

The ledger's design, as in django-hordak: every movement is a
``LedgerTransaction`` whose ``LedgerEntry`` legs balance (debits = credits);
an account's balance is the sum of its entries, never a stored number. Entries
are only ever written by ``kechuang.vouchers.ledger.post``.

Account kinds and what a positive (debit) balance means:

============  ==========================================================
appropriation 财政拨款: the program's funding source; credit-normal, its
              balance is minus the program budget
unallocated   budget not yet issued to anyone
quota         an enterprise's unspent voucher quota (one per program)
committed     subsidy committed to one service order
payable       redeemed, owed to an institution (one per program)
paid          paid to an institution (one per program)
============  ==========================================================

So ``budget = unallocated + quota + committed + payable + paid`` always holds.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 14, "decimal_places": 2}


def positive(field: str, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__gt": 0}), name=name)


class ServiceCategory(models.Model):
    """A category of the published service catalogue (服务目录), e.g. 软件测试, 等保测评."""

    code = models.SlugField(_("代码"), max_length=40, unique=True)
    name = models.CharField(_("名称"), max_length=100)

    class Meta:
        ordering = ["code"]
        verbose_name = _("服务类别")
        verbose_name_plural = _("服务类别")

    def __str__(self) -> str:
        return self.name


class Program(models.Model):
    """One year's voucher program. The caps here are the program's own settings,
    entered by staff; the policy's annual cap (rules engine) applies as well and
    the stricter of the two wins."""

    year = models.PositiveSmallIntegerField(_("年度"))
    name = models.CharField(_("名称"), max_length=200)
    # The rules engine's voucher scheme (RULES.md §5): the ratio timeline it reads.
    scheme = models.CharField(_("券种"), max_length=40, default="district_service_voucher")
    budget = models.DecimalField(_("总预算（元）"), **MONEY)
    per_enterprise_cap = models.DecimalField(_("每家企业上限（元）"), **MONEY)
    per_team_cap = models.DecimalField(_("每个创业团队上限（元）"), **MONEY)
    valid_from = models.DateField(_("有效期起"))
    valid_until = models.DateField(_("有效期止"))
    categories = models.ManyToManyField(
        ServiceCategory, related_name="programs", verbose_name=_("适用服务类别")
    )
    expired_at = models.DateTimeField(_("额度到期处理时间"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-year", "id"]
        verbose_name = _("服务券项目")
        verbose_name_plural = _("服务券项目")
        constraints = [
            positive("budget", "program_budget_positive"),
            positive("per_enterprise_cap", "program_enterprise_cap_positive"),
            positive("per_team_cap", "program_team_cap_positive"),
            models.CheckConstraint(
                condition=Q(valid_until__gte=F("valid_from")), name="program_validity_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.year} {self.name}"


class Institution(models.Model):
    """A service institution (服务机构). It applies to join; staff approve or reject."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待审核")
        APPROVED = "approved", _("已入库")
        REJECTED = "rejected", _("未通过")

    name = models.CharField(_("机构名称"), max_length=200)
    credit_code = models.CharField(_("统一社会信用代码"), max_length=18, unique=True)
    contact = models.CharField(_("联系人及电话"), max_length=100, blank=True, default="")
    bank_name = models.CharField(_("开户银行"), max_length=100, blank=True, default="")
    bank_account = models.CharField(_("银行账号"), max_length=40, blank=True, default="")
    status = models.CharField(
        _("状态"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    decision_reason = models.TextField(_("审核意见"), blank=True, default="")
    decided_at = models.DateTimeField(_("审核时间"), null=True, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="InstitutionMember",
        related_name="voucher_institutions",
        verbose_name=_("机构用户"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("服务机构")
        verbose_name_plural = _("服务机构")

    def __str__(self) -> str:
        return self.name


class InstitutionMember(models.Model):
    """An institution-role user acts for exactly one institution."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="voucher_membership"
    )
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT)


class Offering(models.Model):
    """One service in an institution's catalogue, with its list price."""

    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="offerings")
    category = models.ForeignKey(ServiceCategory, on_delete=models.PROTECT)
    name = models.CharField(_("服务名称"), max_length=200)
    price = models.DecimalField(_("价格（元）"), **MONEY)
    active = models.BooleanField(_("在售"), default=True)

    class Meta:
        ordering = ["institution_id", "name"]
        verbose_name = _("服务项目")
        verbose_name_plural = _("服务项目")
        constraints = [positive("price", "offering_price_positive")]

    def __str__(self) -> str:
        return f"{self.name} ({self.institution})"


class QuotaApplication(models.Model):
    """An enterprise asks for a quota; staff approve (possibly less) or reject."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("待审批")
        APPROVED = "approved", _("已批准")
        REJECTED = "rejected", _("已驳回")

    class ApplicantType(models.TextChoices):
        ENTERPRISE = "enterprise", _("企业")
        STARTUP_TEAM = "startup_team", _("创业团队")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="applications")
    enterprise = models.ForeignKey(
        "registry.Enterprise", on_delete=models.PROTECT, related_name="voucher_applications"
    )
    applicant_type = models.CharField(
        _("申请主体"), max_length=16, choices=ApplicantType.choices, default="enterprise"
    )
    # The policy's applicant conditions (e.g. registered_in_shanghai, is_tsme),
    # declared by the applicant and confirmed by the staff member who approves.
    applicant_facts = models.JSONField(_("申请主体条件"), default=dict, blank=True)
    requested_amount = models.DecimalField(_("申请额度（元）"), **MONEY)
    approved_amount = models.DecimalField(_("批准额度（元）"), null=True, blank=True, **MONEY)
    status = models.CharField(
        _("状态"), max_length=16, choices=Status.choices, default=Status.SUBMITTED
    )
    reason = models.TextField(_("审批意见"), blank=True, default="")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    transaction = models.OneToOneField(
        "LedgerTransaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("额度申请")
        verbose_name_plural = _("额度申请")
        constraints = [
            positive("requested_amount", "quota_application_requested_positive"),
            models.CheckConstraint(
                condition=Q(approved_amount__isnull=True) | Q(approved_amount__gt=0),
                name="quota_application_approved_positive",
            ),
        ]


class ServiceOrder(models.Model):
    """A service contract between an enterprise and an approved institution.

    When vouchers are applied, the order keeps how the subsidy was decided: the
    ratio, the policy file's hash and the parameter entry (start date, article)
    the rules engine used, so that every subsidy can be explained later."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("已登记")
        VOUCHER_APPLIED = "voucher_applied", _("已用券")
        DELIVERED = "delivered", _("已交付")
        CLAIMED = "claimed", _("已申请兑付")
        REDEEMED = "redeemed", _("兑付已批准")
        PAID = "paid", _("已支付")
        CANCELLED = "cancelled", _("已取消")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="orders")
    enterprise = models.ForeignKey(
        "registry.Enterprise", on_delete=models.PROTECT, related_name="voucher_orders"
    )
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="orders")
    offering = models.ForeignKey(Offering, on_delete=models.PROTECT, related_name="orders")
    contract_number = models.CharField(_("合同编号"), max_length=60, blank=True, default="")
    contract_amount = models.DecimalField(_("合同金额（元）"), **MONEY)
    order_date = models.DateField(_("合同日期"))
    start_date = models.DateField(_("服务开始日期"))
    end_date = models.DateField(_("服务结束日期"))
    status = models.CharField(_("状态"), max_length=20, choices=Status.choices, default="draft")

    # How the subsidy was decided (filled when vouchers are applied).
    subsidy_amount = models.DecimalField(_("券补贴（元）"), null=True, blank=True, **MONEY)
    enterprise_pays = models.DecimalField(_("企业自付（元）"), null=True, blank=True, **MONEY)
    ratio = models.CharField(_("补贴比例"), max_length=20, blank=True, default="")
    policy_sha256 = models.CharField(max_length=64, blank=True, default="")
    ratio_since = models.DateField(null=True, blank=True)
    ratio_article = models.CharField(max_length=200, blank=True, default="")
    decision = models.JSONField(null=True, blank=True)

    delivery_file = models.FileField(upload_to="vouchers/delivery/%Y/", blank=True, default="")
    delivery_file_type = models.CharField(max_length=20, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-order_date", "-id"]
        verbose_name = _("服务订单")
        verbose_name_plural = _("服务订单")
        constraints = [
            positive("contract_amount", "order_contract_amount_positive"),
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="order_dates_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.offering.name}"


class Claim(models.Model):
    """An institution's claim to redeem the voucher share of one delivered order."""

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("待审核")
        APPROVED = "approved", _("已批准")
        REJECTED = "rejected", _("已驳回")
        PAID = "paid", _("已支付")

    order = models.ForeignKey(ServiceOrder, on_delete=models.PROTECT, related_name="claims")
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="claims")
    amount = models.DecimalField(_("兑付金额（元）"), **MONEY)
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default="submitted")
    reason = models.TextField(_("审核意见"), blank=True, default="")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    batch = models.ForeignKey(
        "SettlementBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("兑付申请")
        verbose_name_plural = _("兑付申请")
        constraints = [
            positive("amount", "claim_amount_positive"),
            # At most one live claim per order; a rejected one may be followed by another.
            models.UniqueConstraint(
                fields=["order"],
                condition=~Q(status="rejected"),
                name="claim_one_live_per_order",
            ),
        ]


class SettlementBatch(models.Model):
    """Approved claims paid together; its payment file is the Excel export."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="batches")
    total = models.DecimalField(_("合计（元）"), **MONEY)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    transaction = models.OneToOneField(
        "LedgerTransaction", on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("结算批次")
        verbose_name_plural = _("结算批次")
        constraints = [positive("total", "batch_total_positive")]


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        APPROPRIATION = "appropriation", _("财政拨款")
        UNALLOCATED = "unallocated", _("未分配预算")
        QUOTA = "quota", _("企业券额度")
        COMMITTED = "committed", _("订单已占用")
        PAYABLE = "payable", _("应付服务机构")
        PAID = "paid", _("已支付")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="accounts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    enterprise = models.ForeignKey(
        "registry.Enterprise", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    institution = models.ForeignKey(
        Institution, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    order = models.OneToOneField(
        ServiceOrder, null=True, blank=True, on_delete=models.PROTECT, related_name="account"
    )

    class Meta:
        ordering = ["program_id", "kind", "id"]
        verbose_name = _("账户")
        verbose_name_plural = _("账户")
        constraints = [
            models.UniqueConstraint(
                fields=["program", "kind"],
                condition=Q(kind__in=["appropriation", "unallocated"]),
                name="ledger_account_one_per_program",
            ),
            models.UniqueConstraint(
                fields=["program", "enterprise"],
                condition=Q(kind="quota"),
                name="ledger_account_one_quota_per_enterprise",
            ),
            models.UniqueConstraint(
                fields=["program", "kind", "institution"],
                condition=Q(kind__in=["payable", "paid"]),
                name="ledger_account_one_per_institution",
            ),
            models.CheckConstraint(
                condition=(Q(kind="quota") & Q(enterprise__isnull=False))
                | (Q(kind="committed") & Q(order__isnull=False))
                | (Q(kind__in=["payable", "paid"]) & Q(institution__isnull=False))
                | Q(kind__in=["appropriation", "unallocated"]),
                name="ledger_account_owner_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        owner = self.enterprise_id or self.institution_id or self.order_id or ""
        return f"{self.program_id}:{self.kind}:{owner}"


class LedgerTransaction(models.Model):
    """One balanced movement. ``idempotency_key`` makes a retried request move money once."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="transactions")
    idempotency_key = models.CharField(max_length=200)
    # SHA-256 of the request that created it: a replay with another payload is refused.
    request_hash = models.CharField(max_length=64)
    memo = models.CharField(max_length=200)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("记账凭证")
        verbose_name_plural = _("记账凭证")
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="ledger_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.memo}"


class LedgerEntry(models.Model):
    class Side(models.TextChoices):
        DEBIT = "debit", _("借")
        CREDIT = "credit", _("贷")

    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    side = models.CharField(max_length=6, choices=Side.choices)
    amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["id"]
        constraints = [
            positive("amount", "ledger_entry_amount_positive"),
            models.CheckConstraint(
                condition=Q(side__in=["debit", "credit"]), name="ledger_entry_side_valid"
            ),
        ]
