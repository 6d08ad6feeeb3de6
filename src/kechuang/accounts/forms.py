from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from kechuang.accounts import logins
from kechuang.dates import PLAUSIBLE


class LockoutMixin:
    """Refuse a username locked by too many failures, before the password is checked."""

    def clean(self) -> dict:
        # Checked before the password, so a locked name learns nothing from a guess.
        if logins.login_locked(self.cleaned_data.get("username") or ""):
            minutes = int(logins.LOCK_WINDOW.total_seconds() // 60)
            raise forms.ValidationError(
                _("登录失败次数过多，请 %(minutes)d 分钟后再试。") % {"minutes": minutes},
                code="locked",
            )
        return super().clean()


class LoginForm(LockoutMixin, AuthenticationForm):
    """Django's login form, refusing a username locked by too many failures."""


class AdminLoginForm(LockoutMixin, AdminAuthenticationForm):
    """The admin's login form, under the same lockout: a second door must not open to
    unlimited password guessing."""


class AuditLogFilterForm(forms.Form):
    actor = forms.CharField(label=_("操作人"), required=False)
    action = forms.CharField(label=_("操作"), required=False)
    obj_type = forms.CharField(label=_("对象类型"), required=False)
    obj_id = forms.CharField(label=_("对象"), required=False)
    since = forms.DateField(
        label=_("起始日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        validators=PLAUSIBLE,
    )
    until = forms.DateField(
        label=_("截止日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        validators=PLAUSIBLE,
    )


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=_("用途"),
        max_length=100,
        required=False,
        help_text=_("例如：财务系统对接"),
    )
