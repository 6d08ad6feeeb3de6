"""The enterprise registry (企业库): every fact the policy rules read.

NULL means unknown everywhere in this module: a figure nobody reported, a flag
nobody checked. Zero and False are facts, and only ever stored as facts.
Registry models have no foreign key to the user model (that would make the
accounts and registry migrations depend on each other); who changed what is
in ``accounts.AuditLog``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from kechuang.registry import codes
from kechuang.registry.contacts import validate_contact_email, validate_contact_phone

MONEY = {"max_digits": 20, "decimal_places": 2, "null": True, "blank": True}


class Enterprise(models.Model):
    credit_code = models.CharField(_("统一社会信用代码"), max_length=18, unique=True)
    name = models.CharField(_("企业名称"), max_length=200, db_index=True)
    registration_date = models.DateField(_("注册成立日期"), null=True, blank=True)
    district = models.CharField(_("区"), max_length=50, blank=True, default="")
    street = models.CharField(_("街道/镇"), max_length=50, blank=True, default="", db_index=True)
    # 国民经济行业分类 (GB/T 4754-2017) class code, 2–4 digits; see codes.industry_label().
    industry_code = models.CharField(
        _("国民经济行业分类代码"), max_length=4, blank=True, default="", db_index=True
    )
    high_tech_field = models.CharField(
        _("国家重点支持的高新技术领域"), max_length=100, blank=True, default=""
    )
    address = models.CharField(_("地址"), max_length=200, blank=True, default="")
    contact_name = models.CharField(_("联系人"), max_length=50, blank=True, default="")
    contact_phone = models.CharField(
        _("联系电话"), max_length=30, blank=True, default="", validators=[validate_contact_phone]
    )
    contact_email = models.CharField(
        _("联系邮箱"), max_length=100, blank=True, default="", validators=[validate_contact_email]
    )

    # Facts the policies read; NULL = nobody has established it.
    registered_in_mainland = models.BooleanField(_("境内注册"), null=True, blank=True)
    registered_in_shanghai = models.BooleanField(_("在本市注册"), null=True, blank=True)
    resident_enterprise = models.BooleanField(_("居民企业"), null=True, blank=True)
    accounting_sound = models.BooleanField(_("会计核算健全"), null=True, blank=True)
    audit_based_cit_collection = models.BooleanField(_("查账征收"), null=True, blank=True)
    tech_field_supported = models.BooleanField(_("属于重点支持领域"), null=True, blank=True)
    industry_restricted_or_eliminated = models.BooleanField(
        _("属于限制类/淘汰类"), null=True, blank=True
    )
    standards_participation = models.BooleanField(_("参与标准制定"), null=True, blank=True)
    is_ic_or_machine_tool_enterprise = models.BooleanField(
        _("集成电路或工业母机企业"), null=True, blank=True
    )
    # The registry holds the complete IP list of an enterprise once its IP has
    # been surveyed; before that, "no IP record" means unknown, not zero.
    ip_surveyed = models.BooleanField(_("已完成知识产权核查"), null=True, blank=True)
    # Likewise for incidents and the credit lists (信用核查): once checked, the
    # absence of a record is a fact; before, it is unknown.
    compliance_checked = models.BooleanField(_("已完成信用核查"), null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["credit_code"]
        verbose_name = _("企业")
        verbose_name_plural = _("企业")

    def __str__(self) -> str:
        return f"{self.name} ({self.credit_code})"

    @property
    def industry(self) -> str | None:
        """The snake_case industry label the rules read (``software`` …)."""
        return codes.industry_label(self.industry_code) if self.industry_code else None


class FiscalYear(models.Model):
    """One fiscal (calendar) year's figures; every figure may be unknown (NULL)."""

    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.CASCADE, related_name="fiscal_years"
    )
    year = models.PositiveSmallIntegerField(_("年度"))
    sales_revenue = models.DecimalField(_("销售收入"), **MONEY)
    total_income = models.DecimalField(_("总收入"), **MONEY)
    high_tech_income = models.DecimalField(_("高新技术产品（服务）收入"), **MONEY)
    rd_expense = models.DecimalField(_("研发费用总额"), **MONEY)
    rd_expense_domestic = models.DecimalField(_("境内研发费用"), **MONEY)
    total_cost_expense = models.DecimalField(_("成本费用支出总额"), **MONEY)
    total_assets = models.DecimalField(_("资产总额"), **MONEY)
    total_liabilities = models.DecimalField(_("负债总额"), **MONEY)
    # 全年月平均数: a yearly average of monthly head counts, so not always whole.
    staff_total = models.DecimalField(
        _("职工总数"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    staff_sci_tech = models.DecimalField(
        _("科技人员数"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    conversions = models.PositiveIntegerField(_("科技成果转化数"), null=True, blank=True)

    class Meta:
        ordering = ["enterprise_id", "year"]
        verbose_name = _("年度财务")
        verbose_name_plural = _("年度财务")
        constraints = [
            models.UniqueConstraint(fields=["enterprise", "year"], name="fiscal_year_unique"),
            *[
                models.CheckConstraint(
                    condition=Q(**{f"{f}__isnull": True}) | Q(**{f"{f}__gte": 0}),
                    name=f"fiscal_year_{f}_non_negative",
                )
                for f in (
                    "sales_revenue",
                    "total_income",
                    "high_tech_income",
                    "rd_expense",
                    "rd_expense_domestic",
                    "total_cost_expense",
                    "total_assets",
                    "total_liabilities",
                    "staff_total",
                    "staff_sci_tech",
                )
            ],
            models.CheckConstraint(
                condition=Q(staff_sci_tech__isnull=True)
                | Q(staff_total__isnull=True)
                | Q(staff_sci_tech__lte=F("staff_total")),
                name="fiscal_year_sci_tech_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.enterprise_id}/{self.year}"


class IPAsset(models.Model):
    class Status(models.TextChoices):
        VALID = "valid", _("有效")
        EXPIRED = "expired", _("期满终止")
        LAPSED = "lapsed", _("未缴年费终止")
        INVALIDATED = "invalidated", _("宣告无效")
        PENDING = "pending", _("审查中")
        TRANSFERRED = "transferred", _("已转让")

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="ip_assets")
    ip_type = models.CharField(_("类型"), max_length=32, choices=codes.IP_TYPE_CHOICES)
    number = models.CharField(_("登记号/专利号"), max_length=64, unique=True)
    title = models.CharField(_("名称"), max_length=200, blank=True, default="")
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices)
    application_date = models.DateField(_("申请日"), null=True, blank=True)
    grant_date = models.DateField(_("授权日"), null=True, blank=True)
    expiry_date = models.DateField(_("到期日"), null=True, blank=True)
    self_developed = models.BooleanField(_("自主研发"), null=True, blank=True)
    used_in_earlier_hte_application = models.BooleanField(_("已用于以往高企认定"), default=False)

    class Meta:
        ordering = ["enterprise_id", "number"]
        verbose_name = _("知识产权")
        verbose_name_plural = _("知识产权")

    def __str__(self) -> str:
        return self.number

    @property
    def ip_class(self) -> str:
        """``I`` or ``II`` (工作指引's Ⅰ类/Ⅱ类), derived from the type."""
        return codes.IP_CLASS[self.ip_type]


class Certification(models.Model):
    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.CASCADE, related_name="certifications"
    )
    kind = models.CharField(_("资质类型"), max_length=32, choices=codes.CERTIFICATION_CHOICES)
    number = models.CharField(_("证书编号"), max_length=64)
    valid_from = models.DateField(_("发证日期"))
    valid_to = models.DateField(_("有效期至"), null=True, blank=True)

    class Meta:
        ordering = ["enterprise_id", "kind", "valid_from"]
        verbose_name = _("资质")
        verbose_name_plural = _("资质")
        constraints = [
            models.UniqueConstraint(fields=["kind", "number"], name="certification_unique"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")),
                name="certification_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.number}"


class Award(models.Model):
    class Kind(models.TextChoices):
        NATIONAL = "national_sci_award", _("国家科学技术奖")
        SHANGHAI = "shanghai_sci_award", _("上海市科学技术奖")
        OTHER = "other", _("其他")

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="awards")
    kind = models.CharField(_("奖项"), max_length=32, choices=Kind.choices)
    grade = models.CharField(_("等级"), max_length=32, blank=True, default="")
    # Position of the enterprise among the winning units (获奖单位排名), 1 = first.
    unit_rank = models.PositiveSmallIntegerField(_("获奖单位排名"), null=True, blank=True)
    awarded_on = models.DateField(_("获奖日期"))
    title = models.CharField(_("项目名称"), max_length=200, blank=True, default="")

    class Meta:
        ordering = ["enterprise_id", "awarded_on"]


class RDInstitution(models.Model):
    class Level(models.TextChoices):
        NATIONAL = "national", _("国家级")
        PROVINCIAL = "provincial", _("省部级")
        MUNICIPAL = "municipal", _("市级")
        DISTRICT = "district", _("区级")
        OTHER = "other", _("其他")

    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.CASCADE, related_name="rd_institutions"
    )
    name = models.CharField(_("研发机构名称"), max_length=200)
    level = models.CharField(_("级别"), max_length=16, choices=Level.choices)
    recognized_on = models.DateField(_("认定日期"))
    revoked_on = models.DateField(_("撤销日期"), null=True, blank=True)

    class Meta:
        ordering = ["enterprise_id", "recognized_on"]

    @property
    def provincial_or_higher(self) -> bool:
        return self.level in codes.PROVINCIAL_OR_HIGHER


class StandardLed(models.Model):
    class Level(models.TextChoices):
        INTERNATIONAL = "international", _("国际标准")
        NATIONAL = "national", _("国家标准")
        INDUSTRY = "industry", _("行业标准")
        LOCAL = "local", _("地方标准")
        GROUP = "group", _("团体标准")

    class Role(models.TextChoices):
        LED = "led", _("主导制定")
        PARTICIPATED = "participated", _("参与制定")

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="standards")
    code = models.CharField(_("标准号"), max_length=64)
    title = models.CharField(_("标准名称"), max_length=200, blank=True, default="")
    level = models.CharField(_("级别"), max_length=16, choices=Level.choices)
    role = models.CharField(_("角色"), max_length=16, choices=Role.choices)
    published_on = models.DateField(_("发布日期"))

    class Meta:
        ordering = ["enterprise_id", "published_on"]


class Incident(models.Model):
    class Kind(models.TextChoices):
        MAJOR_SAFETY = "major_safety", _("重大安全事故")
        MAJOR_QUALITY = "major_quality", _("重大质量事故")
        ENVIRONMENTAL = "serious_environmental", _("严重环境违法行为")
        RESEARCH_MISCONDUCT = "research_misconduct", _("科研严重失信行为")

    enterprise = models.ForeignKey(Enterprise, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(_("类型"), max_length=32, choices=Kind.choices)
    occurred_on = models.DateField(_("发生日期"))
    description = models.TextField(_("说明"), blank=True, default="")

    class Meta:
        ordering = ["enterprise_id", "occurred_on"]


class ListEntry(models.Model):
    """A period on one of the credit lists (经营异常名录, 严重违法失信名单)."""

    class Kind(models.TextChoices):
        ABNORMAL_OPERATIONS = "abnormal_operations", _("经营异常名录")
        SERIOUS_DISHONESTY = "serious_dishonesty", _("严重违法失信名单")

    enterprise = models.ForeignKey(
        Enterprise, on_delete=models.CASCADE, related_name="list_entries"
    )
    kind = models.CharField(_("名单"), max_length=32, choices=Kind.choices)
    listed_on = models.DateField(_("列入日期"))
    removed_on = models.DateField(_("移出日期"), null=True, blank=True)
    reason = models.CharField(_("原因"), max_length=200, blank=True, default="")

    class Meta:
        ordering = ["enterprise_id", "listed_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(removed_on__isnull=True) | Q(removed_on__gte=F("listed_on")),
                name="list_entry_dates_ordered",
            ),
        ]
