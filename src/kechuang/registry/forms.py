"""Forms of the registry pages. They validate input only; saving is the services' job.

The edit forms are plain forms built from the model's fields (labels, types,
limits), not ModelForms: a ModelForm writes the input onto the instance while
validating, and the service must read the enterprise's *stored* values to
record "before" in the audit log.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from kechuang.registry import codes, selectors
from kechuang.registry.models import Enterprise, FiscalYear

#: What an enterprise user may change about their own enterprise. The legal
#: registration facts (name, date, credit code) and the commission's own
#: findings (flags such as 已完成信用核查) are the commission's to change.
ENTERPRISE_USER_FIELDS = (
    "address",
    "contact_name",
    "contact_phone",
    "contact_email",
    "high_tech_field",
)
STAFF_FIELDS = (
    "name",
    "registration_date",
    "district",
    "street",
    "industry_code",
    *ENTERPRISE_USER_FIELDS,
    "registered_in_mainland",
    "registered_in_shanghai",
    "resident_enterprise",
    "accounting_sound",
    "audit_based_cit_collection",
    "tech_field_supported",
    "industry_restricted_or_eliminated",
    "standards_participation",
    "is_ic_or_machine_tool_enterprise",
    "ip_surveyed",
    "compliance_checked",
)
FISCAL_YEAR_FIELDS = (
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
    "conversions",
)


def _division_choices() -> list[tuple[str, str]]:
    return [("", _("全部行业"))] + [
        (code, f"{code} {name}") for code, name in codes.industry_codes().items() if len(code) == 2
    ]


def _street_choices() -> list[tuple[str, str]]:
    return [("", _("全部街道/镇"))] + [(s, s) for s in selectors.enterprise_streets()]


class EnterpriseSearchForm(forms.Form):
    q = forms.CharField(label=_("名称或信用代码"), required=False, max_length=100)
    street = forms.ChoiceField(label=_("街道/镇"), required=False, choices=_street_choices)
    industry = forms.ChoiceField(label=_("行业"), required=False, choices=_division_choices)
    certification = forms.ChoiceField(
        label=_("有效资质"),
        required=False,
        choices=[("", _("不限"))] + codes.CERTIFICATION_CHOICES,
    )

    def filters(self) -> dict[str, str]:
        """The keyword arguments of ``selectors.enterprise_list`` (empty when invalid)."""
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "search": data.get("q") or "",
            "street": data.get("street") or "",
            "industry_code": data.get("industry") or "",
            "certification": data.get("certification") or "",
        }


class EnterpriseForm(forms.Form):
    """The enterprise's basic data; which fields depends on who edits (see ``for_user``)."""

    def __init__(self, *args: Any, field_names: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(forms.fields_for_model(Enterprise, fields=field_names))
        if "industry_code" in self.fields:
            self.fields["industry_code"] = forms.ChoiceField(
                label=self.fields["industry_code"].label,
                required=False,
                choices=[("", "—")]
                + [(c, f"{c} {n}") for c, n in sorted(codes.industry_codes().items())],
            )


class FiscalYearForm(forms.Form):
    year = forms.IntegerField(label=_("年度"), min_value=1949, max_value=2100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(forms.fields_for_model(FiscalYear, fields=FISCAL_YEAR_FIELDS))
        for name in FISCAL_YEAR_FIELDS:
            # Blank means "unknown" (NULL), never zero.
            self.fields[name].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # The service and the database check these too; here they become field errors.
        for name in FISCAL_YEAR_FIELDS:
            value = data.get(name)
            if value is not None and value < 0:
                self.add_error(name, _("不能为负数。"))
        total, sci = data.get("staff_total"), data.get("staff_sci_tech")
        if total is not None and sci is not None and sci > total:
            self.add_error("staff_sci_tech", _("科技人员数不能超过职工总数。"))
        return data


class ImportForm(forms.Form):
    file = forms.FileField(label=_("Excel（.xlsx）或 CSV 文件"))

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".xlsx", ".csv")):
            raise forms.ValidationError(_("只接受 .xlsx 或 .csv 文件。"))
        return upload
