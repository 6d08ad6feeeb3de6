"""Django admin for the registry: every save and delete is audited like a service call."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from kechuang.accounts.services import audit_record
from kechuang.registry import models


def _plain(value: Any) -> Any:
    return str(value) if hasattr(value, "pk") else value


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
        obj_id = _obj_id(obj)
        super().delete_model(request, obj)
        audit_record(
            actor=request.user,
            action=f"{obj._meta.model_name}_delete",
            obj_type=obj._meta.model_name,
            obj_id=obj_id,
            before={"repr": str(obj)},
            after=None,
            note="admin",
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
