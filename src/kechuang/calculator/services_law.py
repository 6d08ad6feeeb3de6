"""Publishing a reform's parameter value as the law in force, and withdrawing one.

Staff prepare and run reforms; only an admin publishes (``access_runs.require_publish``,
checked here as well as by every page, endpoint and command). A publication cites its
legal basis (文号 and article), is audited with the value before and after, and is
never edited: a correction is a new publication.

Effective dates may lie in the past: commission documents often take effect from the
start of the year and are issued weeks later (自2026年1月1日起执行). What was already
decided stays as decided: a voucher order keeps the ratio it was applied with and a
免申即享 run keeps the parameter values and policy hash it used. Only evaluations made
after the publication see the new value for dates on or after its effective date.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from kechuang.accounts.models import User
from kechuang.accounts.services import audit_record
from kechuang.calculator import access_runs, law, runs
from kechuang.calculator.models_law import ParameterPublication
from kechuang.calculator.models_runs import Reform
from kechuang.errors import KechuangError
from kechuang.rules import get_policy
from kechuang.rules.policy import Parameter

#: Units whose values are whole numbers (counts, days, years, points, ranks).
WHOLE_UNITS = frozenset({"persons", "days", "year", "years", "points", "rank"})
#: Digits the publication table holds (DecimalField(max_digits=24, decimal_places=8)).
MAX_PLACES = 8
MAX_INTEGER_DIGITS = 16


def check_value(param: Parameter, text: str) -> Decimal:
    """The value as an exact Decimal of the parameter's type, or a refusal naming it.

    The policy files declare no ranges; the unit says what a value may be: a ratio
    lies in [0, 1], an amount in yuan is at least 0 with at most two decimals (fen),
    a count is a whole number at least 0."""
    field = param.name
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise KechuangError(
            f"参数 {param.name} 的值不是数字 / {param.name}: not a number: {text!r}", field=field
        ) from None
    if not value.is_finite():
        raise KechuangError(f"参数 {param.name} 的值不是数字 / {param.name}: not a number", field=field)
    sign, digits, exponent = value.normalize().as_tuple()
    places = max(0, -int(exponent))
    # adjusted(): the power of ten of the first digit, whatever the trailing zeros (1E+20).
    if places > MAX_PLACES or (value and value.adjusted() + 1 > MAX_INTEGER_DIGITS):
        raise KechuangError(
            f"参数 {param.name} 的值位数过多 / {param.name}: too many digits: {value}", field=field
        )
    if value < 0:
        raise KechuangError(
            f"参数 {param.name} 不能为负数 / {param.name} may not be negative: {value}", field=field
        )
    if param.unit == "ratio" and value > 1:
        raise KechuangError(
            f"参数 {param.name} 是比例，应在 0 到 1 之间 / {param.name} is a ratio, "
            f"between 0 and 1: {value}",
            field=field,
        )
    if param.unit == "yuan" and places > 2:
        raise KechuangError(
            f"参数 {param.name} 是金额，最多两位小数（分）/ {param.name} is an amount in yuan, "
            f"at most 2 decimals: {value}",
            field=field,
        )
    if param.unit in WHOLE_UNITS and places > 0:
        raise KechuangError(
            f"参数 {param.name} 应为整数（{param.unit}）/ {param.name} must be a whole number "
            f"({param.unit}): {value}",
            field=field,
        )
    return value


def parameter_publish(
    *,
    reform: Reform,
    parameters: list[str],
    effective_from: dt.date | None,
    document_number: str,
    article: str,
    actor: User,
    effective_until: dt.date | None = None,
    reason: str = "",
) -> list[ParameterPublication]:
    """Publish the reform's values of ``parameters`` as in force from ``effective_from``.

    Refuses (a :class:`KechuangError` naming the field, nothing written): a parameter
    the policy does not have or the reform does not change, a value of the wrong type
    or outside its unit's range, a missing 文号 or article, a missing or out-of-policy
    effective date, and a date on which the same parameter already has a publication.
    """
    access_runs.require_publish(actor)
    policy = get_policy(reform.policy_id)
    names = [n.strip() for n in parameters if n and n.strip()]
    if not names:
        raise KechuangError("请选择要发布的参数 / choose the parameter(s) to publish", field="parameters")
    for name in names:
        if name not in policy.parameters:
            raise KechuangError(
                f"政策 {policy.id} 没有参数 {name} / unknown parameter {name!r} "
                f"(known: {', '.join(policy.parameters)})",
                field="parameters",
            )
        if name not in reform.overrides:
            raise KechuangError(
                f"此试算没有调整参数 {name} / the reform does not change {name} "
                f"(it changes: {', '.join(reform.overrides)})",
                field="parameters",
            )
    values = {name: check_value(policy.parameters[name], reform.overrides[name]) for name in names}
    document_number = (document_number or "").strip()
    article = (article or "").strip()
    if not document_number:
        raise KechuangError("请填写文号 / document number (文号) required", field="document_number")
    if not article:
        raise KechuangError("请填写条款 / article required", field="article")
    if len(document_number) > 100 or len(article) > 200:
        raise KechuangError(
            "文号最多100字、条款最多200字 / document number at most 100, article at most 200 characters",
            field="document_number" if len(document_number) > 100 else "article",
        )
    if effective_from is None:
        raise KechuangError("请填写生效日期 / effective date required", field="effective_from")
    if effective_from < policy.effective_from or (
        policy.effective_to is not None and effective_from > policy.effective_to
    ):
        raise KechuangError(
            f"生效日期 {effective_from} 不在政策有效期内 / effective date outside the policy's "
            f"period ({policy.effective_from} – {policy.effective_to or '…'})",
            field="effective_from",
        )
    if effective_until is not None and effective_until < effective_from:
        raise KechuangError(
            "失效日期早于生效日期 / effective until is before effective from", field="effective_until"
        )

    in_force = law.policy_in_force(policy.id)
    published: list[ParameterPublication] = []
    try:
        with transaction.atomic():
            for name in names:
                clash = ParameterPublication.objects.filter(
                    policy_id=policy.id, parameter=name, effective_from=effective_from,
                    withdrawn_at__isnull=True,
                ).first()
                if clash is not None:
                    raise _overlap(name, effective_from, clash)
                entry = in_force.parameters[name].at(effective_from)
                before = runs.decimal_text(entry.value) if entry else None
                pub = ParameterPublication.objects.create(
                    policy_id=policy.id,
                    parameter=name,
                    value=values[name],
                    effective_from=effective_from,
                    effective_until=effective_until,
                    document_number=document_number,
                    article=article,
                    reason=(reason or "").strip(),
                    reform=reform,
                    previous_value=before or "",
                    published_by=actor,
                )
                audit_record(
                    actor=actor,
                    action="parameter_publish",
                    obj_type="parameter_publication",
                    obj_id=pub.pk,
                    before={
                        "policy": policy.id,
                        "parameter": name,
                        "value": before,
                        "since": entry.since.isoformat() if entry and entry.since else None,
                        "article": entry.article if entry else None,
                    },
                    after=_as_audit(pub),
                    note=pub.reason,
                )
                published.append(pub)
            transaction.on_commit(law.clear_cache)
    except IntegrityError:
        # Another admin published the same parameter for the same day meanwhile.
        raise _overlap(names[0], effective_from, None) from None
    return published


def _overlap(name: str, day: dt.date, clash: ParameterPublication | None) -> KechuangError:
    which = f" (#{clash.pk} {clash.document_number}, {clash.value.normalize()})" if clash else ""
    return KechuangError(
        f"参数 {name} 在 {day} 已有发布值{which}：更正请另选生效日期或先撤回 / {name} already has "
        f"a published value from {day}{which}: choose another date or withdraw it first",
        field="effective_from",
    )


def _as_audit(pub: ParameterPublication) -> dict[str, Any]:
    return {
        "policy": pub.policy_id,
        "parameter": pub.parameter,
        "value": format(pub.value.normalize(), "f"),
        "effective_from": pub.effective_from.isoformat(),
        "effective_until": pub.effective_until.isoformat() if pub.effective_until else None,
        "document_number": pub.document_number,
        "article": pub.article,
        "reform": pub.reform_id,
    }


def parameter_publication_withdraw(
    *, publication: ParameterPublication, reason: str, actor: User, today: dt.date | None = None
) -> ParameterPublication:
    """Withdraw a publication that has not taken effect yet (admin, with a reason).

    One in effect is never withdrawn: decisions may already rest on it; publish a
    correcting value from a later date instead."""
    access_runs.require_publish(actor)
    reason = (reason or "").strip()
    if not reason:
        raise KechuangError("请填写撤回理由 / reason required", field="reason")
    today = today or timezone.localdate()
    with transaction.atomic():
        # Locked: two admins withdrawing at once must not both stamp it.
        pub = ParameterPublication.objects.select_for_update().get(pk=publication.pk)
        if pub.withdrawn_at is not None:
            raise KechuangError("已撤回 / already withdrawn", field="publication")
        if pub.effective_from <= today:
            raise KechuangError(
                f"已于 {pub.effective_from} 生效，不能撤回；请发布更正值 / in force since "
                f"{pub.effective_from}: publish a correction instead",
                field="publication",
            )
        pub.withdrawn_at = timezone.now()
        pub.withdrawn_by = actor
        pub.withdrawal_reason = reason
        pub.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawal_reason"])
        audit_record(
            actor=actor, action="parameter_withdraw", obj_type="parameter_publication",
            obj_id=pub.pk, before=_as_audit(pub), after=None, note=reason,
        )
        transaction.on_commit(law.clear_cache)
    return pub
