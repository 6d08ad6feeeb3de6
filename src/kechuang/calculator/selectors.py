"""What the policy calculator reads: the self-check of one enterprise (政策计算器).

An enterprise's facts come from the registry as ONE SQL row
(:func:`kechuang.registry.selectors.enterprise_facts_rows`, the same SELECT the
免申即享 runs push down), and every policy in force on the as-of date explains
that row (:func:`kechuang.rules.evaluate_flat`). Nothing here knows a threshold:
values, parameters, articles and flips come from the decision's trace.

The view model is plain data (dataclasses of strings, numbers and links) so the
page, the CLI and the tests read the same thing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from kechuang.calculator import law
from kechuang.registry import access as registry_access
from kechuang.registry.models import Enterprise
from kechuang.registry.selectors import enterprise_facts_rows
from kechuang.rules import Decision, Policy, get_policy, policy_ids
from kechuang.rules.explain.render import criterion_text
from kechuang.rules.facts import COLUMNS_BY_NAME, FISCAL_YEARS

#: Verdict -> the label users read (符合 / 不符合 / 需专家评审 / 需补充数据).
VERDICT_LABELS = {
    "eligible": _("符合"),
    "ineligible": _("不符合"),
    "needs_review": _("需专家评审"),
    "needs_data": _("需补充数据"),
}

#: Output paths that hold a policy's money benefit, in order of preference.
BENEFIT_OUTPUTS = (("benefit_amount",), ("subsidy_amount",), ("additional_deduction",))
#: Output paths that hold a policy's total score (an interval or one number).
SCORE_OUTPUTS = (("score", "total_range"), ("total_score",))

# Where a fact of the flat row is kept, so a missing one links to the place to
# enter it. The registry holds the enterprise columns; the transaction columns
# (a tax year's R&D claim, a voucher order) belong to one application and the
# expert scores to a review panel: the registry never fills those (docs/facts-row.md).
PER_APPLICATION_COLUMNS = frozenset(
    {
        "tax_year",
        "manufacturing_revenue_share",
        "negative_list_revenue_share",
        "is_registered_tsme_for_year",
        "rd_expense_expensed",
        "rd_intangible_cost",
        "rd_expense_expensed_by_period_present",
        "rd_expensed_2022_jan_sep",
        "rd_expensed_2022_oct_dec",
        "scheme",
        "applicant_type",
        "team_company_registered",
        "team_in_incubator_park_or_maker_space",
        "team_core_members",
        "order_date",
        "contract_amount",
        "voucher_used_this_year",
        "service_provider_on_platform",
        "service_category_eligible",
    }
)
def application_inputs(policy: Policy) -> list[str]:
    """The inputs ``policy`` always needs from one application (a contract, a tax year's
    R&D), which no registry holds: such a policy is checked per application, never run
    over the registry (every enterprise would come out needs_data, asked for facts it
    cannot supply there)."""
    return [
        name
        for name, inp in policy.inputs.items()
        if name in PER_APPLICATION_COLUMNS
        and inp.required is not None
        and inp.required.text.strip().upper() == "TRUE"
    ]


#: Facts the commission records on its register of certificates and awards.
REGISTER_COLUMNS = frozenset(
    {
        "dq_hte_certificate_issue_date",
        "dq_national_sci_award_top3_within_5y",
        "dq_provincial_rd_institution",
        "dq_led_standard_within_5y",
        "is_tsme",
        "hte_valid",
        "hte_first_certificate_issue_date",
        "little_giant_valid",
        "little_giant_certificate_issue_date",
        "sh_sci_award_count",
        "sh_sci_award_year",
        "sh_sci_award_grade",
        "sh_sci_award_unit_rank",
    }
)


@dataclass
class MissingFact:
    """A fact a decision needs and the registry does not have."""

    path: str  # the nested path the decision names (financials.2025.rd_expense)
    column: str  # the flat column
    label: str  # the input's description in the user's language
    where: str  # fiscal_year | enterprise | register | application | expert
    url: str | None = None  # the page to enter it (or to see it), when there is one
    action: str = ""  # what to do, in the user's language


@dataclass
class CriterionView:
    id: str
    title: str
    article: str
    outcome: bool | None
    #: requirement | exclusion (true excludes) | classification (picks a group)
    role: str
    passed: bool | None  # for an exclusion, its outcome negated; None for a classification
    badge: str  # the outcome as it reads for the role: "✓ 满足", "✓ 不属于", "· 否" …
    values: list[tuple[str, str, str]]  # (name, description, value as text)
    parameters: list[dict[str, Any]]  # name, title, value, since, until, article
    changes: list[str]  # what would have to change (flip), in the user's language


@dataclass
class PolicyCheck:
    """One policy's decision about the enterprise, ready for a page."""

    policy_id: str
    title: str
    verdict: str
    verdict_label: str
    score: tuple[Any, Any] | None
    benefit: Decimal | None
    per_application: bool
    criteria: list[CriterionView]
    missing: list[MissingFact]
    invalid: list[str]
    decision: Decision = field(repr=False)
    #: 不得重复享受: the declared reason, when a policy this one excludes is also met.
    stacking: list[str] = field(default_factory=list)
    #: Parameter values an admin published (``law.published_values``), with their 文号.
    published: list[dict[str, Any]] = field(default_factory=list)

    @property
    def benefit_text(self) -> str:
        return money_text(self.benefit)


@dataclass
class SelfCheck:
    enterprise: Enterprise
    as_of: dt.date
    checks: list[PolicyCheck]
    facts: dict[str, Any] = field(repr=False)

    @property
    def expected_benefit_text(self) -> str:
        return money_text(self.expected_benefit)

    @property
    def expected_benefit(self) -> Decimal:
        """The sum of the benefits of the eligible verdicts (stacking not applied)."""
        return sum(
            (c.benefit for c in self.checks if c.verdict == "eligible" and c.benefit),
            Decimal(0),
        )


def _lang() -> str:
    return "en" if (get_language() or "zh").startswith("en") else "zh"


def policies_in_force(as_of: dt.date, *, published: bool = True) -> list[Policy]:
    """Every policy whose effective period contains ``as_of``, in id order, with its
    published parameter values (:func:`kechuang.calculator.law.policy_in_force`).

    ``published=False``: the files alone, for a list of titles that must not touch the
    database (the public calculator's index)."""
    ids = policy_ids()
    policies = law.policies_in_force(ids) if published else [get_policy(pid) for pid in ids]
    return [
        p
        for p in policies
        if p.effective_from <= as_of and (p.effective_to is None or as_of <= p.effective_to)
    ]


def enterprise_facts_row(enterprise: Enterprise, as_of: dt.date) -> dict[str, Any]:
    """The enterprise's flat facts row as of ``as_of``: one SQL query."""
    rows = enterprise_facts_rows(as_of=as_of, enterprise_ids=[enterprise.pk])
    return rows[0]


def enterprise_selfcheck(*, enterprise: Enterprise, as_of: dt.date, user: Any = None) -> SelfCheck:
    """Every policy in force on ``as_of``, explained for this enterprise's registry facts.

    ``user`` decides which "enter it here" links are offered (only pages they may edit).
    The caller has already checked that ``user`` may see the enterprise (``access.py``)."""
    row = enterprise_facts_row(enterprise, as_of)
    may_edit = user is not None and registry_access.can_edit_enterprise(user, enterprise)
    may_edit_flags = may_edit and registry_access.may_browse(user)
    checks = [
        policy_check(
            law.evaluate_flat(policy, row, as_of),
            enterprise=enterprise,
            row=row,
            may_edit=may_edit,
            may_edit_flags=may_edit_flags,
        )
        for policy in policies_in_force(as_of)
    ]
    for check in checks:
        check.published = law.published_values(check.decision.evaluation.policy, as_of)
    note_stacking(checks)
    return SelfCheck(enterprise=enterprise, as_of=as_of, checks=checks, facts=row)


def note_stacking(checks: list[PolicyCheck]) -> None:
    """Say, on both policies, when two eligible ones may not be paid together."""
    lang = _lang()
    by_id = {c.policy_id: c for c in checks}
    for check in checks:
        policy = check.decision.evaluation.policy
        for rule in policy.stacking:
            other = by_id.get(rule.other)
            if rule.kind != "excludes" or other is None:
                continue
            if check.verdict != "eligible" or other.verdict != "eligible":
                continue
            why = rule.article
            if rule.reason:
                why = f"{rule.reason.en if lang == 'en' else rule.reason.zh} [{why}]"
            note = f"{check.title} / {other.title}: {why}"
            for c in (check, other):
                c.stacking.append(note)


def decisions_as_dicts(*, enterprise: Enterprise, as_of: dt.date) -> list[dict[str, Any]]:
    """``Decision.to_dict()`` of every policy in force, for the API and ``--json``."""
    row = enterprise_facts_row(enterprise, as_of)
    return [law.evaluate_flat(p, row, as_of).to_dict() for p in policies_in_force(as_of)]


# --------------------------------------------------------------------------- shaping


def _output(outputs: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = outputs
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def benefit_of(decision: Decision) -> Decimal | None:
    """The money benefit the decision computes (None when the policy pays none or it is unknown)."""
    outputs = decision.evaluation.outputs
    for path in BENEFIT_OUTPUTS:
        value = _output(outputs, path)
        if value is not None:
            return (
                Decimal(value.numerator) / Decimal(value.denominator)
                if isinstance(value, Fraction)
                else Decimal(str(value))
            )
    return None


def score_of(decision: Decision) -> tuple[Any, Any] | None:
    outputs = decision.evaluation.outputs
    for path in SCORE_OUTPUTS:
        value = _output(outputs, path)
        if isinstance(value, list | tuple) and len(value) == 2:
            return (display(value[0]), display(value[1]))
        if value is not None:
            return (display(value), display(value))
    return None


def display(value: Any, money: bool = False) -> str:
    """A value of the trace as people read it: 是/否, exact decimals, amounts grouped."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(_("是")) if value else str(_("否"))
    # Exact to 6 places whatever the size: the default 28 digits would round (or, to
    # quantize an amount of 10^26, fail) on the figures a public form accepts.
    with localcontext(prec=80):
        if isinstance(value, Fraction):
            value = (
                value.numerator
                if value.denominator == 1
                else (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
                    Decimal("0.000001")
                )
            )
        if isinstance(value, Decimal):
            value = value.normalize()
            if value == value.to_integral_value():
                value = int(value)
            else:
                return f"{value:,f}" if money else f"{value:f}"
    if isinstance(value, int):
        return f"{value:,}" if money else str(value)
    return str(value)


def money_text(value: Decimal | None) -> str:
    """An amount in yuan with two decimals and grouping (¥1,234.50)."""
    return "—" if value is None else f"{value.quantize(Decimal('0.01')):,}"


def _display_value(name: str, value: Any) -> str:
    column = COLUMNS_BY_NAME.get(name)
    is_date = (
        column.type == "date" if column is not None else name == "as_of" or name.endswith("_date")
    )
    if is_date and isinstance(value, Fraction) and value.denominator == 1:
        value = value.numerator
    if is_date and isinstance(value, int) and not isinstance(value, bool):
        return f"{value // 10000:04d}-{value // 100 % 100:02d}-{value % 100:02d}"
    return display(value, money=column is not None and column.type == "money")


#: How a flip reads: (direction, strict) -> (zh, en) for numbers and for dates.
_BOUND_WORDS = {
    ("increase", False): (("不低于", "at least"), ("不早于", "on or after")),
    ("increase", True): (("高于", "more than"), ("晚于", "after")),
    ("decrease", False): (("不高于", "at most"), ("不晚于", "on or before")),
    ("decrease", True): (("低于", "less than"), ("早于", "before")),
}


def _change_text(policy: Policy, change: dict[str, Any], values: dict[str, Any], lang: str) -> str:
    """The smallest change (the trace's ``flip``) as a target: "x 须不低于 T（目前 V）".

    The engine gives the gap; with the value read this becomes the target people
    act on. Dates (yyyymmdd) read as dates, not as a number of "days" to add."""
    subject = change.get("subject", "")
    current = values.get(subject)
    fallback = change.get(f"text_{lang}") or change.get("text_zh", "")
    if current is None or isinstance(current, bool | str) or "by" not in change:
        return fallback
    gap = Fraction(Decimal(str(change["by"])))
    target = Fraction(current) + (gap if change.get("direction") == "increase" else -gap)
    column = COLUMNS_BY_NAME.get(subject)
    is_date = column is not None and column.type == "date"
    words = _BOUND_WORDS[(change.get("direction", "increase"), bool(change.get("strict")))]
    word = words[1 if is_date else 0][1 if lang == "en" else 0]
    label = _describe(policy, subject, lang) or subject
    if is_date and target.denominator == 1:
        shown, now = _display_value(subject, int(target)), _display_value(subject, current)
    else:
        money = (column.type if column is not None else change.get("unit")) == "money"
        shown, now = display(target, money=money), display(current, money=money)
    if lang == "en":
        return f"{label}: {word} {shown} (now {now})"
    return f"{label}：须{word} {shown}（目前 {now}）"


def _describe(policy: Policy, name: str, lang: str) -> str:
    if name in policy.inputs:
        return policy.inputs[name].description.get(lang)
    if name in policy.labels:  # a derived value with a description (e.g. hte's rd_sum)
        return policy.labels[name].get(lang)
    if name in policy.parameters:
        return policy.parameters[name].title.get(lang)
    if name == "as_of":
        return str(_("评估日期"))
    return ""


def policy_check(
    decision: Decision,
    *,
    enterprise: Enterprise | None = None,
    row: dict[str, Any] | None = None,
    may_edit: bool = False,
    may_edit_flags: bool = False,
) -> PolicyCheck:
    """One decision shaped for the page (also used by the public calculator)."""
    ev = decision.evaluation
    policy = ev.policy
    lang = _lang()
    criteria = []
    for c in ev.criteria:
        changes = [
            _change_text(policy, change, c.values, lang)
            for change in (c.flip or {}).get("changes", [])
        ]
        criteria.append(
            CriterionView(
                id=c.name,
                title=c.title_en if lang == "en" else c.title_zh,
                article=c.article,
                outcome=c.outcome,
                role=c.role,
                passed=c.passed,
                badge=" ".join(criterion_text(c.role, c.outcome, c.applies)[::2] if lang == "en"
                               else criterion_text(c.role, c.outcome, c.applies)[:2]),
                values=[
                    (name, _describe(policy, name, lang), _display_value(name, value))
                    for name, value in c.values.items()
                ],
                parameters=[
                    {
                        "name": u.name,
                        "title": _describe(policy, u.name, lang),
                        "value": display(u.value, money=policy.parameters[u.name].unit == "yuan"),
                        "since": u.start,
                        "until": u.end,
                        "article": u.article,
                    }
                    for u in c.parameters
                ],
                changes=changes,
            )
        )
    by_path: dict[str, str] = {}
    for name, col in _input_columns(policy):  # the first input reported under a path
        by_path.setdefault(col.reported_path(ev.as_of), name)
    missing = [
        _missing(
            path, by_path.get(path, ""), policy, lang, enterprise, row, may_edit, may_edit_flags
        )
        for path in decision.missing_fields
    ]
    per_application = ev.verdict == "needs_data" and any(m.where == "application" for m in missing)
    return PolicyCheck(
        policy_id=policy.id,
        title=policy.title.get(lang),
        verdict=ev.verdict,
        verdict_label=str(VERDICT_LABELS[ev.verdict]),
        score=score_of(decision),
        benefit=benefit_of(decision),
        per_application=per_application,
        criteria=criteria,
        missing=missing,
        invalid=list(decision.invalid_fields),
        decision=decision,
    )


def _input_columns(policy: Policy):
    for name in policy.inputs:
        yield name, COLUMNS_BY_NAME[name]


def where_kept(column: str) -> str:
    """fiscal_year | enterprise | register | application | expert (see the tables above)."""
    if column in PER_APPLICATION_COLUMNS:
        return "application"
    if column.startswith("expert_"):
        return "expert"
    if column in REGISTER_COLUMNS:
        return "register"
    col = COLUMNS_BY_NAME.get(column)
    if col is not None and col.fiscal_year in FISCAL_YEARS:
        return "fiscal_year"
    return "enterprise"


def _missing(
    path: str,
    column: str,
    policy: Policy,
    lang: str,
    enterprise: Enterprise | None,
    row: dict[str, Any] | None,
    may_edit: bool,
    may_edit_flags: bool,
) -> MissingFact:
    where = where_kept(column) if column else "application"
    label = policy.inputs[column].description.get(lang) if column in policy.inputs else path
    url = None
    action = {
        "application": _("随申请填写"),
        "expert": _("由专家评审给出"),
        "fiscal_year": _("由企业填写年度数据"),
        "enterprise": _("由区科委核实记录"),
        "register": _("由区科委核实记录"),
    }[where]
    if enterprise is not None:
        code = enterprise.credit_code
        if where == "fiscal_year" and may_edit:
            k = COLUMNS_BY_NAME[column].fiscal_year or 0
            year = (row or {}).get("as_of", 0) // 10000 - k
            action = _("填写年度数据")
            if row and row.get(f"fy{k}_present"):
                url = reverse("registry:fiscal_year_edit", args=[code, year])
            else:
                url = reverse("registry:fiscal_year_new", args=[code])
        elif where == "enterprise" and may_edit_flags:
            action = _("修改企业信息")
            url = reverse("registry:enterprise_edit", args=[code])
        elif where in ("enterprise", "register"):
            # Facts the commission records and checks: the enterprise sees where they
            # stand on its page; staff correct them there (or in the admin).
            url = reverse("registry:enterprise_detail", args=[code])
    return MissingFact(
        path=path, column=column, label=label, where=where, url=url, action=str(action)
    )
