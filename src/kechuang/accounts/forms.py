from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class AuditLogFilterForm(forms.Form):
    actor = forms.CharField(label=_("操作人"), required=False)
    action = forms.CharField(label=_("操作"), required=False)
    obj_type = forms.CharField(label=_("对象类型"), required=False)
    obj_id = forms.CharField(label=_("对象"), required=False)
    since = forms.DateField(
        label=_("起始日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("截止日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("用途"),
        max_length=100,
        required=False,
        help_text=_("例如：财务系统对接"),
    )
