"""Users with one role each, and the audit log of every change to registry data."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    STAFF = "staff", _("科委工作人员")
    ENTERPRISE = "enterprise", _("企业用户")
    INSTITUTION = "institution", _("服务机构")
    EXPERT = "expert", _("评审专家")
    AUDITOR = "auditor", _("审计")
    ADMIN = "admin", _("管理员")


class User(AbstractUser):
    role = models.CharField(_("角色"), max_length=16, choices=Role.choices, default=Role.STAFF)
    # An enterprise user acts for exactly one enterprise; nobody else is bound to one.
    enterprise = models.ForeignKey(
        "registry.Enterprise",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
        verbose_name=_("所属企业"),
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(role="enterprise", enterprise__isnull=False)
                | (~Q(role="enterprise") & Q(enterprise__isnull=True)),
                name="user_enterprise_iff_enterprise_role",
            ),
        ]


class AuditLog(models.Model):
    """Who changed what, when, with the object's fields before and after.

    Rows are only ever inserted (by ``accounts.services.audit_record``)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,  # NULL = the system (demo generator, migrations, batch jobs)
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("操作人"),
    )
    at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)
    action = models.CharField(_("操作"), max_length=64)
    obj_type = models.CharField(_("对象类型"), max_length=64)
    #: Room for "<credit code>/<kind>/<number>" with a 64-character certificate or IP number.
    obj_id = models.CharField(_("对象"), max_length=200)
    before = models.JSONField(_("修改前"), null=True, blank=True)
    after = models.JSONField(_("修改后"), null=True, blank=True)
    note = models.TextField(_("备注"), blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["obj_type", "obj_id", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.obj_type}:{self.obj_id}"


class ApiToken(models.Model):
    """A bearer token for the REST API. Only the SHA-256 of the token is kept."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("用户"),
    )
    name = models.CharField(_("名称"), max_length=100, blank=True, default="")
    # The first characters of the clear token, so a user can tell tokens apart.
    prefix = models.CharField(_("前缀"), max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
