"""Read-only admin: money moves only through the services (and ``ledger.post``),
never by editing rows here. Service categories are plain reference data."""

from __future__ import annotations

from django.contrib import admin

from kechuang.vouchers import models


@admin.register(models.ServiceCategory)
class ServiceCategoryAdmin(admin.ModelAdmin):
    list_display = ("code", "name")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


for model in (
    models.Program,
    models.Institution,
    models.Offering,
    models.QuotaApplication,
    models.ServiceOrder,
    models.Claim,
    models.SettlementBatch,
    models.LedgerAccount,
    models.LedgerTransaction,
    models.LedgerEntry,
):
    admin.site.register(model, ReadOnlyAdmin)
