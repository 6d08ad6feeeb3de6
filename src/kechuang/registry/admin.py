"""Django admin for the registry: every save and delete is audited like a service call."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import router
from django.db.models.deletion import Collector

from kechuang.accounts.services import audit_record
from kechuang.registry import models


def _plain(value: Any) -> Any:
    return str(value) if hasattr(value, "pk") else value


def _snapshot(obj: Any) -> dict[str, Any]:
    """The record's fields as JSON values (amounts and dates as their exact text)."""
    out = {}
    for field in obj._meta.concrete_fields:
        value = getattr(obj, field.attname)
        plain = value is None or isinstance(value, bool | int | str)
        out[field.attname] = value if plain else str(value)
    return out


def _obj_id(obj: Any) -> str:
    if isinstance(obj, models.Enterprise):
        return obj.credit_code
    # Child records carry their enterprise's code first, as imports log them.
    return f"{obj.enterprise.credit_code}/{obj.pk}"


class AuditedAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        obj_type = obj._meta.model_name
        before = {f: _plain(form.initial.get(f)) for f in form.changed_data} if change else None
        super().save_model(request, obj, form, change)
        if change and not form.changed_data:
            return
        audit_record(
            actor=request.user,
            action=f"{obj_type}_{'update' if change else 'create'}",
            obj_type=obj_type,
            obj_id=_obj_id(obj),
            before=before,
            after={f: _plain(form.cleaned_data.get(f)) for f in form.changed_data},
            note="admin",
        )

    def delete_model(self, request, obj):
        # Everything the delete takes with it (an enterprise's years, IP, certificates),
        # each recorded with its values: the audit log is then the only place they live.
        collector = Collector(using=router.db_for_write(type(obj)))
        collector.collect([obj])
        # Rows deleted in bulk (fast_deletes) are fetched too: they are the figures.
        groups = [*collector.data.values(), *(list(qs) for qs in collector.fast_deletes)]
        gone = [
            (instance, _obj_id(instance), _snapshot(instance))
            for instances in groups
            for instance in instances
        ]
        super().delete_model(request, obj)
        for instance, obj_id, values in gone:
            audit_record(
                actor=request.user,
                action=f"{instance._meta.model_name}_delete",
                obj_type=instance._meta.model_name,
                obj_id=obj_id,
                before=values,
                after=None,
                note="admin" if instance is obj else f"admin: with {_obj_id(obj)}",
            )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class FiscalYearInline(admin.TabularInline):
    model = models.FiscalYear
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in models.FiscalYear._meta.fields if f.name != "id"]


@admin.register(models.Enterprise)
class EnterpriseAdmin(AuditedAdmin):
    list_display = ["credit_code", "name", "street", "industry_code", "registration_date"]
    list_filter = ["street", "ip_surveyed", "compliance_checked"]
    search_fields = ["credit_code", "name"]
    inlines = [FiscalYearInline]


for model in (
    models.FiscalYear,
    models.IPAsset,
    models.Certification,
    models.Award,
    models.RDInstitution,
    models.StandardLed,
    models.Incident,
    models.ListEntry,
):
    admin.site.register(
        model,
        type(
            f"{model.__name__}Admin",
            (AuditedAdmin,),
            {"raw_id_fields": ["enterprise"], "search_fields": ["enterprise__credit_code"]},
        ),
    )
