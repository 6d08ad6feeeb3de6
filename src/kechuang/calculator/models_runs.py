"""免申即享 (benefit without application) runs, their results, and what follows them.

A run evaluates policies for every enterprise in scope as of a date, inside the app
database (the compiled policy SQL over the registry's facts SELECT), and keeps what
a commission must be able to defend later: the policy file hashes, the parameter
values used, the as-of date, a hash of the input facts, the facts rows themselves (a
table of the run) and one result per enterprise and policy: its verdict, benefit and
missing facts; the rest of its outputs and its explanation are computed again from
the kept row and the recorded values, and checked against the stored verdict.

After staff review and confirm a run, each enterprise that qualifies gets an offer
(数据比对 done); it confirms its wish and its bank account (意愿确认), and only then
is a :class:`BenefitRecord` created for the payment workflow (拨付到账).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

AMOUNT = {"max_digits": 20, "decimal_places": 2}


class Reform(models.Model):
    """A what-if copy of one policy's parameters, with some values changed.

    A reform never changes the law in force: its overrides are applied to an in-memory
    copy of the policy when a reform run is compiled. An admin may publish some of its
    values as the law in force (:class:`~kechuang.calculator.models_law.ParameterPublication`)."""

    name = models.CharField(_("名称"), max_length=200)
    policy_id = models.CharField(_("政策"), max_length=64)
    #: parameter name -> the value as decimal text (e.g. {"service_voucher_ratio": "0.75"}).
    overrides = models.JSONField(_("参数调整"), default=dict)
    note = models.TextField(_("说明"), blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.policy_id})"


class MianshenRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("运行中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")
        INTERRUPTED = "interrupted", _("已中断")
        CONFIRMED = "confirmed", _("已确认")

    policies = models.JSONField(_("政策"), default=list)
    as_of = models.DateField(_("基准日"))
    #: {"street": …, "industry_code": …, "certification": …}; empty = whole registry.
    scope = models.JSONField(_("范围"), default=dict, blank=True)
    reform = models.ForeignKey(
        Reform, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    #: For a reform run: the run of the law in force it is compared with.
    baseline = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The law-in-force side of a reform's comparison: a what-if, never reviewed or paid.
    is_baseline = models.BooleanField(default=False)
    #: Which execution owns the run: a worker taken for stopped (interrupted) and then
    #: resumed by another must not write the run afterwards.
    attempt = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    step = models.CharField(_("当前步骤"), max_length=200, blank=True, default="")
    steps_done = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Reproducibility: what the run read.
    #: policy id -> sha256 of the law it applied (its file and the values published).
    policy_hashes = models.JSONField(default=dict, blank=True)
    #: policy id -> sha256 of the policy file alone (``policy_hashes`` also covers the
    #: published values): outputs and explanations are computed again only with that file.
    policy_files = models.JSONField(default=dict, blank=True)
    #: policy id -> {parameter: {"value", "since", "until", "article"}} at as_of.
    parameters = models.JSONField(default=dict, blank=True)
    #: policy id -> [[column, [path…], type], …]: how stored outputs decode.
    columns = models.JSONField(default=dict, blank=True)
    #: policy id -> the output path of its benefit amount, if it has one.
    benefit_outputs = models.JSONField(default=dict, blank=True)
    facts_hash = models.CharField(max_length=80, blank=True, default="")
    facts_count = models.PositiveIntegerField(default=0)
    #: Policies whose results are stored (a resumed run skips them).
    policies_done = models.JSONField(default=list, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {','.join(self.policies)} @ {self.as_of}"


class MianshenResult(models.Model):
    """One policy's decision about one enterprise in one run.

    A run inserts its results with one ``INSERT … SELECT`` per policy (100,000 rows
    each). The two foreign keys have no database constraint: per-row referential checks
    cost a second per policy on PostgreSQL, and the rows cannot dangle: the insert joins
    the enterprise table and names the run it has locked; Django still enforces
    ``PROTECT`` and ``CASCADE`` on deletes. Offers and benefit records keep theirs."""

    run = models.ForeignKey(
        MianshenRun,
        on_delete=models.CASCADE,
        related_name="results",
        db_constraint=False,
        db_index=False,  # the unique constraint's first column
    )
    # No index of its own: every read goes through the run (an enterprise's results by
    # its credit code); deleting an enterprise, which Django checks here for PROTECT,
    # is rare enough to scan for.
    enterprise = models.ForeignKey(
        "registry.Enterprise",
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    credit_code = models.CharField(max_length=18)
    policy_id = models.CharField(max_length=64)
    verdict = models.CharField(max_length=16)
    #: The amount the policy computes (NULL: the policy has none, or it is unknown).
    benefit = models.DecimalField(null=True, blank=True, **AMOUNT)
    #: What the run would pay after stacking rules and exclusions (NULL: nothing).
    payable = models.DecimalField(null=True, blank=True, **AMOUNT)
    stacking_note = models.TextField(blank=True, default="")
    missing_fields = models.TextField(blank=True, default="")
    #: Empty since runs stopped storing their outputs (``selectors_runs.result_outputs``
    #: computes them again from the kept facts); earlier runs' raw output columns,
    #: decoded with the run's ``columns``.
    outputs = models.JSONField(default=dict)
    excluded = models.BooleanField(default=False)
    exclusion_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["credit_code", "policy_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "credit_code", "policy_id"], name="mianshen_result_unique"
            ),
            models.CheckConstraint(
                condition=~Q(excluded=True) | ~Q(exclusion_reason=""),
                name="mianshen_exclusion_has_reason",
            ),
        ]
        # Lists, the diff, stacking and confirmation read the rows that qualify, need
        # review or need data; the ineligible majority is read only through the unique
        # index (by run, in credit-code order). Indexing only those rows, with no index
        # on the enterprise, makes the 700,000 rows of seven policies about a quarter
        # cheaper to insert on three connections at once.
        indexes = [
            models.Index(
                fields=["run", "policy_id", "verdict"],
                name="mianshen_result_to_review",
                condition=~Q(verdict="ineligible"),
            )
        ]


class MianshenOffer(models.Model):
    """A confirmed 免申即享 benefit offered to an enterprise (数据比对 done)."""

    class Status(models.TextChoices):
        OFFERED = "offered", _("待企业确认")
        ACCEPTED = "accepted", _("企业已确认")

    run = models.ForeignKey(MianshenRun, on_delete=models.PROTECT, related_name="offers")
    result = models.OneToOneField(MianshenResult, on_delete=models.PROTECT, related_name="offer")
    enterprise = models.ForeignKey(
        "registry.Enterprise", on_delete=models.PROTECT, related_name="mianshen_offers"
    )
    policy_id = models.CharField(max_length=64)
    amount = models.DecimalField(**AMOUNT)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OFFERED)
    created_at = models.DateTimeField(auto_now_add=True)
    bank_name = models.CharField(_("开户银行"), max_length=100, blank=True, default="")
    bank_account = models.CharField(_("银行账号"), max_length=40, blank=True, default="")
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="mianshen_offer_amount_positive")
        ]


class BenefitRecord(models.Model):
    """A benefit the enterprise has accepted, waiting for the payment workflow (拨付)."""

    class Status(models.TextChoices):
        PENDING = "pending_payment", _("待拨付")
        PAID = "paid", _("已拨付")

    offer = models.OneToOneField(MianshenOffer, on_delete=models.PROTECT, related_name="benefit")
    enterprise = models.ForeignKey(
        "registry.Enterprise", on_delete=models.PROTECT, related_name="benefit_records"
    )
    policy_id = models.CharField(max_length=64)
    amount = models.DecimalField(**AMOUNT)
    bank_name = models.CharField(max_length=100)
    bank_account = models.CharField(max_length=40)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="benefit_record_amount_positive")
        ]


class Notification(models.Model):
    """An in-app message to one user (the email copy goes through Django's mail)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=200)
    body = models.TextField()
    url = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


@receiver(post_delete, sender=MianshenRun)
def _drop_run_facts(sender, instance: MianshenRun, **kwargs) -> None:
    """A run's facts table (what it read) lives exactly as long as the run."""
    from kechuang.calculator.runs import drop_facts

    drop_facts(instance.pk)
