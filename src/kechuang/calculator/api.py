"""The calculator in the REST API (mounted at ``/api/calculator``).

- ``GET /api/calculator/{credit_code}?as_of=``: the self-check, every decision's
  ``to_dict()``; the caller must be allowed to see the enterprise (``access.py``),
  else 404 as for a code that does not exist.
- ``POST /api/calculator/try/{policy_id}``: the public calculator, no token needed;
  nested facts in, one decision out, nothing stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Router, Schema

from kechuang.calculator import access, selectors, services
from kechuang.dates import check_day
from kechuang.rules import UnknownPolicy, get_policy

router = Router(tags=["calculator"])


class SelfCheckOut(Schema):
    credit_code: str
    as_of: dt.date
    decisions: list[dict[str, Any]]


class TryIn(Schema):
    as_of: dt.date | None = None
    facts: dict[str, Any] = {}


@router.get(
    "/{credit_code}",
    response=SelfCheckOut,
    summary="Self-check: every policy in force, explained for one enterprise's registry facts",
)
def selfcheck(request: HttpRequest, credit_code: str, as_of: dt.date | None = None) -> dict:
    enterprise = access.enterprise_for_selfcheck(request.user, credit_code)
    day = check_day(as_of, "as_of") if as_of else dt.date.today()
    return {
        "credit_code": enterprise.credit_code,
        "as_of": day,
        "decisions": selectors.decisions_as_dicts(enterprise=enterprise, as_of=day),
    }


@router.post(
    "/try/{policy_id}",
    auth=None,
    response=dict[str, Any],
    summary="Public calculator: one policy's decision for typed facts (nothing stored)",
)
def try_policy(request: HttpRequest, policy_id: str, payload: TryIn) -> dict:
    try:
        get_policy(policy_id)
    except UnknownPolicy:
        raise Http404() from None
    decision = services.calculator_try(
        policy_id=policy_id, facts=payload.facts, as_of=payload.as_of or dt.date.today()
    )
    return decision.to_dict()
