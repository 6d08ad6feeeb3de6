"""Forms of the calculator pages. They check shapes only; the rules decide.

The public calculator's form is built from one policy's declared inputs: one
field per fact (labels are the inputs' own zh/en descriptions), every field
optional, because an empty field is *unknown* and the decision then names it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from sqlglot import exp

from kechuang.dates import PLAUSIBLE
from kechuang.rules import Policy
from kechuang.rules.facts import COLUMNS_BY_NAME, FISCAL_YEARS

#: Flat columns computed from another fact, not typed: the registration date gives
#: its year and age; a fiscal year is present when any of its figures is given.
_DERIVED = {
    "registration_year": "registration_date",
    "days_since_registration": "registration_date",
}
_DERIVED.update({f"fy{k}_present": "" for k in FISCAL_YEARS})
_DERIVED["rd_expense_expensed_by_period_present"] = ""


class AsOfForm(forms.Form):
    as_of = forms.DateField(
        label=_("评估日期"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        validators=PLAUSIBLE,
    )

    def as_of_or_today(self) -> dt.date:
        if self.is_valid() and self.cleaned_data.get("as_of"):
            return self.cleaned_data["as_of"]
        return dt.date.today()


class EnterpriseCodeForm(forms.Form):
    # Letters and digits only: the code becomes part of a URL.
    code = forms.RegexField(label=_("统一社会信用代码"), max_length=18, regex=r"^\s*[0-9A-Za-z]+\s*$")


def _text_choices(policy: Policy, name: str) -> list[str] | None:
    """The words an input accepts, read from its ``invalid_when: x NOT IN (…)``."""
    rule = policy.inputs[name].invalid_when
    if rule is None:
        return None
    for node in rule.tree.walk():
        if (
            isinstance(node, exp.In)
            and isinstance(node.this, exp.Column)
            and node.this.name == name
        ):
            words = [e.this for e in node.expressions if isinstance(e, exp.Literal) and e.is_string]
            if words:
                return words
    return None


def fact_fields(policy: Policy, as_of: dt.date, lang: str) -> list[tuple[str, str, str, Any]]:
    """(flat column, label, type, choices) of each fact a visitor may type, in file order.

    Fields are named by flat column (``fy1_sales_revenue``), so the same form serves
    any as-of date; the label names the fiscal year for the date shown."""
    fields: list[tuple[str, str, str, Any]] = []
    seen: set[str] = set()
    for name, spec in policy.inputs.items():
        source = _DERIVED.get(name, name)
        if not source or source in seen:
            continue
        seen.add(source)
        column = COLUMNS_BY_NAME[source]
        description = (
            policy.inputs[source].description if source in policy.inputs else spec.description
        )
        label = description.get(lang)
        if column.fiscal_year is not None:
            label = f"{label} [{as_of.year - column.fiscal_year}]"
        choices = _text_choices(policy, source) if column.type == "text" else None
        fields.append((source, label, column.type, choices))
    return fields


def _field(label: str, typ: str, choices: list[str] | None) -> forms.Field:
    unknown = ("", _("未知"))
    if typ == "bool":
        return forms.TypedChoiceField(
            label=label,
            required=False,
            choices=[unknown, ("true", _("是")), ("false", _("否"))],
            coerce=lambda v: v == "true",
            empty_value=None,
        )
    if typ == "date":
        return forms.DateField(
            label=label, required=False, widget=forms.DateInput(attrs={"type": "date"})
        )
    if typ == "count":
        return forms.IntegerField(label=label, required=False)
    if typ in ("money", "number", "share"):
        help_text = _("比例写作小数：0.5 即 50%") if typ == "share" else ""
        return forms.DecimalField(label=label, required=False, help_text=help_text)
    if choices:
        return forms.ChoiceField(
            label=label, required=False, choices=[unknown, *((c, c) for c in choices)]
        )
    return forms.CharField(label=label, required=False, max_length=100)


class PolicyFactsForm(forms.Form):
    """One policy's facts, typed by a visitor (nothing is stored)."""

    as_of = forms.DateField(
        label=_("评估日期"), widget=forms.DateInput(attrs={"type": "date"}), validators=PLAUSIBLE
    )

    def __init__(self, *args: Any, policy: Policy, as_of: dt.date, lang: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.policy = policy
        self.columns: list[str] = []
        for column, label, typ, choices in fact_fields(policy, as_of, lang):
            self.fields[column] = _field(label, typ, choices)
            self.columns.append(column)

    def facts(self) -> dict[str, Any]:
        """``{nested path: value}`` of the filled fields as of the chosen date
        (an empty field is unknown and left out)."""
        as_of = self.cleaned_data["as_of"]
        values: dict[str, Any] = {}
        for column in self.columns:
            value = self.cleaned_data.get(column)
            if value is None or value == "":
                continue
            path = COLUMNS_BY_NAME[column].nested_path(as_of)
            values[path] = value.isoformat() if isinstance(value, dt.date) else value
        return values
