"""Template helpers for the layout: what the current user may do, their role's name, and
amounts as people read them.

The checks themselves live in ``kechuang.accounts.roles``; templates only ask,
so a hidden link is never the only thing standing between a user and a page.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template
from django.utils.translation import gettext as _

from kechuang.accounts import roles

register = template.Library()


@register.filter
def may(user, ability: str) -> bool:
    """``{% if user|may:"import_registry" %}``: one of the abilities in ``roles.ABILITIES``."""
    return roles.has_ability(user, ability)


@register.filter
def role_label(user) -> str:
    return roles.role_label(user)


def _audited_model(obj_type: str):
    from kechuang.registry.models import Certification, Enterprise, FiscalYear, IPAsset

    return {
        "enterprise": Enterprise,
        "fiscal_year": FiscalYear,
        "ip_asset": IPAsset,
        "certification": Certification,
    }.get(obj_type)


def _field_label(model, name: str) -> str:
    try:
        return f"{model._meta.get_field(name).verbose_name} ({name})"
    except Exception:  # not a model field (or no model): the name is all we have
        return name


@register.filter
def audit_changes(entry) -> list[tuple[str, object, object]]:
    """The fields an audit entry changed, as (label, before, after), in a stable order.

    A creation has no "before" and a deletion no "after"; both list every field.
    The label is the field's translated name with the field itself in brackets."""
    before = entry.before or {}
    after = entry.after or {}
    model = _audited_model(entry.obj_type)
    names = list(dict.fromkeys([*before.keys(), *after.keys()]))
    return [
        (_field_label(model, name), before.get(name), after.get(name))
        for name in names
        if entry.before is None or entry.after is None or before.get(name) != after.get(name)
    ]


@register.filter
def audit_object(entry) -> str:
    """``年度财务 91310107MA1G00001U/2024``: the object's kind in words, then its id."""
    model = _audited_model(entry.obj_type)
    kind = model._meta.verbose_name if model else entry.obj_type
    return f"{kind} {entry.obj_id}"


@register.filter
def industry_name(code: str) -> str:
    """``6513`` → ``6513 应用软件开发`` (or the division's name for an unlisted class)."""
    from kechuang.registry import codes

    if not code:
        return ""
    table = codes.industry_codes()
    name = table.get(code) or table.get(code[:2], "")
    return f"{code} {name}".strip()


@register.filter
def sheet_label(entity: str) -> str:
    """``fiscal_years`` → ``年度财务 (fiscal_years)``: an import file's sheet, as people name it."""
    from kechuang.registry.columns import sheet_named

    sheet = sheet_named(entity)
    return f"{sheet.zh} ({entity})" if sheet else entity


@register.filter
def yuan(value: object) -> object:
    """An amount as commission staff read it: thousands separated, two decimals
    (45000 → 45,000.00). Never rounded: a value finer than a fen keeps its digits. None
    and "" pass through, for ``default``/``default_if_none`` to show."""
    if value is None or value == "" or isinstance(value, bool):
        return value
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return value
    if not amount.is_finite():
        return value
    fen = amount.quantize(Decimal("0.01"))
    return format(fen if fen == amount else amount, ",")


@register.filter
def plain(value: object) -> object:
    """A stored JSON value as a person reads it, not as Python prints it: a mapping as
    ``key: value, …``, a list of mappings one per ``;``, yes/no for booleans. None passes
    through, for ``default_if_none`` to show."""
    if value is None:
        return None
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        separator = "; " if any(isinstance(v, dict) for v in value) else ", "
        return separator.join(str(plain(v)) for v in value)
    return value
