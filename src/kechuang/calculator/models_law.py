"""Published parameter values: the only way a reform changes the law in force.

A policy file holds each parameter's dated timeline. When the commission adopts a new
value (a new document, 文号), an admin publishes it: one row here, layered onto the
file's timeline from its effective date on by :func:`kechuang.calculator.law.policy_in_force`.

A publication is never edited. A correction is a new publication; an admin may
withdraw one that has not taken effect yet (the row is kept, stamped withdrawn).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from kechuang.calculator.models_runs import Reform


class ParameterPublication(models.Model):
    """One new dated value of one policy parameter, in force from ``effective_from``."""

    policy_id = models.CharField(_("政策"), max_length=64)
    parameter = models.CharField(_("参数"), max_length=64)
    #: Exact decimal (ratios, yuan, counts); never a float.
    value = models.DecimalField(_("值"), max_digits=24, decimal_places=8)
    effective_from = models.DateField(_("生效日期"))
    #: Inclusive; None = until a later value replaces it.
    effective_until = models.DateField(_("失效日期"), null=True, blank=True)
    document_number = models.CharField(_("文号"), max_length=100)
    article = models.CharField(_("条款"), max_length=200)
    reason = models.TextField(_("理由"), blank=True, default="")
    reform = models.ForeignKey(
        Reform, null=True, blank=True, on_delete=models.PROTECT, related_name="publications"
    )
    #: The value in force on ``effective_from`` just before this publication (audit, display).
    previous_value = models.CharField(max_length=40, blank=True, default="")
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(default=timezone.now)
    # A withdrawal is the one later stamp a publication takes (before it takes effect).
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    withdrawal_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["policy_id", "parameter", "effective_from", "id"]
        constraints = [
            # Two values of one parameter from the same day would make the law ambiguous;
            # the service says so by field first, this holds under concurrent publishers.
            models.UniqueConstraint(
                fields=["policy_id", "parameter", "effective_from"],
                condition=Q(withdrawn_at__isnull=True),
                name="calculator_publication_one_per_day",
            ),
            models.CheckConstraint(
                condition=Q(effective_until__isnull=True)
                | Q(effective_until__gte=models.F("effective_from")),
                name="calculator_publication_until_after_from",
            ),
            models.CheckConstraint(
                condition=~Q(document_number="") & ~Q(article=""),
                name="calculator_publication_cites_basis",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy_id}.{self.parameter} = {self.value} from {self.effective_from}"

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None
