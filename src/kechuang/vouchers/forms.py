"""Page forms: they only check shapes (dates parse, fields present). Amounts
stay text here and are parsed by the services, which say what is wrong."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from kechuang.vouchers.models import Program, ServiceCategory


class DateInput(forms.DateInput):
    input_type = "date"


_MAX_ID = 2**63 - 1


def _id_in_range(value: object) -> bool:
    # An id the database cannot hold makes the lookup raise OverflowError (a 500).
    text = str(value).strip()
    return text.isdigit() and len(text) <= 19 and int(text) <= _MAX_ID


class RecordChoiceField(forms.ModelChoiceField):
    """A record chosen by id; an id beyond any column's range is an invalid choice."""

    def to_python(self, value: object) -> object:
        if value not in self.empty_values and not _id_in_range(value):
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class RecordsChoiceField(forms.ModelMultipleChoiceField):
    """Records chosen by id; an id beyond any column's range is an invalid choice."""

    def _check_values(self, value: object) -> object:
        for pk in value or ():
            if not _id_in_range(pk):
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                )
        return super()._check_values(value)


class ProgramForm(forms.Form):
    year = forms.IntegerField(label=_("年度"), min_value=2000, max_value=2100)
    name = forms.CharField(label=_("名称"), max_length=200)
    budget = forms.CharField(label=_("总预算（元）"))
    per_enterprise_cap = forms.CharField(label=_("每家企业上限（元）"))
    per_team_cap = forms.CharField(label=_("每个创业团队上限（元）"))
    valid_from = forms.DateField(label=_("有效期起"), widget=DateInput)
    valid_until = forms.DateField(label=_("有效期止"), widget=DateInput)
    categories = RecordsChoiceField(
        label=_("适用服务类别"), queryset=ServiceCategory.objects.all()
    )


class QuotaApplyForm(forms.Form):
    program = RecordChoiceField(label=_("项目"), queryset=Program.objects.all())
    amount = forms.CharField(label=_("申请额度（元）"))
    applicant_type = forms.ChoiceField(
        label=_("申请主体"), choices=[("enterprise", _("企业")), ("startup_team", _("创业团队"))]
    )
    registered_in_shanghai = forms.BooleanField(label=_("企业：在本市注册"), required=False)
    is_tsme = forms.BooleanField(label=_("企业：符合科技型中小企业条件"), required=False)
    team_company_registered = forms.BooleanField(label=_("创业团队：已注册公司"), required=False)
    team_in_incubator = forms.BooleanField(
        label=_("创业团队：入驻孵化器、大学科技园或众创空间"), required=False
    )
    team_core_members = forms.IntegerField(
        label=_("创业团队：核心成员人数"), required=False, min_value=0, max_value=10_000
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("applicant_type") == "startup_team" and data.get("team_core_members") is None:
            self.add_error("team_core_members", _("创业团队须填写核心成员人数。"))
        return data

    def applicant_facts(self) -> dict:
        """The facts the ``voucher`` policy reads about this applicant type (RULES.md 5.2)."""
        data = self.cleaned_data
        if data["applicant_type"] == "startup_team":
            return {
                "team": {
                    "company_registered": data["team_company_registered"],
                    "in_incubator_park_or_maker_space": data["team_in_incubator"],
                    "core_members": data["team_core_members"],
                }
            }
        return {"registered_in_shanghai": data["registered_in_shanghai"], "is_tsme": data["is_tsme"]}


class OrderForm(forms.Form):
    program = RecordChoiceField(label=_("项目"), queryset=Program.objects.all())
    offering = forms.IntegerField(label=_("服务项目编号"), widget=forms.Select)
    contract_number = forms.CharField(label=_("合同编号"), required=False, max_length=60)
    contract_amount = forms.CharField(label=_("合同金额（元）"))
    order_date = forms.DateField(label=_("合同日期"), widget=DateInput)
    start_date = forms.DateField(label=_("服务开始日期"), widget=DateInput)
    end_date = forms.DateField(label=_("服务结束日期"), widget=DateInput)


class InstitutionForm(forms.Form):
    name = forms.CharField(label=_("机构名称"), max_length=200)
    credit_code = forms.CharField(label=_("统一社会信用代码"), max_length=18)
    contact = forms.CharField(label=_("联系人及电话"), max_length=100, required=False)
    bank_name = forms.CharField(label=_("开户银行"), max_length=100, required=False)
    bank_account = forms.CharField(label=_("银行账号"), max_length=40, required=False)


class OfferingForm(forms.Form):
    category = RecordChoiceField(label=_("服务类别"), queryset=ServiceCategory.objects.all())
    name = forms.CharField(label=_("服务名称"), max_length=200)
    price = forms.CharField(label=_("价格（元）"))


class StatisticsFilter(forms.Form):
    date_from = forms.DateField(label=_("起"), required=False, widget=DateInput)
    date_to = forms.DateField(label=_("止"), required=False, widget=DateInput)
