"""The law in force: each policy file with every published parameter value layered on.

Every platform evaluation (self-check page, API and CLI, the public calculator,
免申即享 runs, a reform's "before" side, the voucher ledger's ratio and caps) asks
:func:`policy_in_force` or the ``evaluate`` helpers here, never
:func:`kechuang.rules.get_policy` directly. The plain ``kechuang rules`` CLI reads
the files only: it has no database.

A publication (:class:`~kechuang.calculator.models_law.ParameterPublication`) becomes
a new dated entry of its parameter's timeline from its effective date on: the file's
entries before that date are unchanged, so an evaluation as of an earlier date gives
the old value and one on or after it the new value. Publications are layered in order
of effective date, so a later-dated one ends an earlier open-ended one.

The layered policy is cached per process, keyed on a version read with one small
query (the highest publication id, the number of rows and of withdrawals, the latest
publication time): a publication or withdrawal in any process changes the key. The
time is there because SQLite reuses the id of a rolled-back row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from threading import Lock
from typing import Any

from django.db import connection

from kechuang import rules
from kechuang.calculator.models_law import ParameterPublication
from kechuang.rules import Decision, get_policy
from kechuang.rules.policy import Parameter, Policy, TimelineEntry

__all__ = [
    "evaluate",
    "evaluate_flat",
    "layer_publication",
    "policies_in_force",
    "policy_in_force",
    "publications",
    "published_values",
    "publication_article",
    "publications_version",
]

_ONE_DAY = dt.timedelta(days=1)
_cache: dict[str, tuple[tuple[Any, ...], Policy, list[ParameterPublication]]] = {}
_cache_lock = Lock()


#: The version when nothing was ever published.
NOTHING_PUBLISHED: tuple[Any, ...] = (0, 0, 0, None)


def publications_version() -> tuple[Any, ...]:
    """A key that changes on every publication and withdrawal (see the module doc)."""
    table = connection.ops.quote_name(ParameterPublication._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT COALESCE(MAX(id), 0), COUNT(*), COUNT(withdrawn_at), MAX(published_at) "
            f"FROM {table}"
        )
        top, rows, withdrawn, latest = cur.fetchone()
    return int(top), int(rows), int(withdrawn), str(latest) if latest is not None else None


def clear_cache() -> None:
    """Forget the layered policies (the publish service calls it; the version key would
    also notice on the next read)."""
    with _cache_lock:
        _cache.clear()


def policy_in_force(policy_id: str) -> Policy:
    """The policy file with every published value of its parameters layered on.

    Without publications this is the file's own :class:`Policy` (same object, same
    sha256). With some, a copy whose ``sha256`` also covers them, so anything that
    records the hash (a run, a voucher order) records which publications it used.
    Raises :class:`kechuang.rules.UnknownPolicy` for an unknown id."""
    return _in_force(policy_id, publications_version())


def policies_in_force(policy_ids: Iterable[str]) -> list[Policy]:
    """:func:`policy_in_force` of several policies, reading the version once."""
    version = publications_version()
    return [_in_force(pid, version) for pid in policy_ids]


def _in_force(policy_id: str, version: tuple[Any, ...]) -> Policy:
    base = get_policy(policy_id)
    with _cache_lock:
        hit = _cache.get(policy_id)
    if hit is not None and hit[0] == version and hit[1].path == base.path:
        return hit[1]
    if version == NOTHING_PUBLISHED:
        # Nothing was ever published: the file is the law (no query for the rows).
        pubs: list[ParameterPublication] = []
    else:
        pubs = list(
            ParameterPublication.objects.filter(policy_id=policy_id, withdrawn_at__isnull=True)
            .select_related("published_by")
            .order_by("effective_from", "id")
        )
    policy = layer_publications(base, pubs)
    with _cache_lock:
        _cache[policy_id] = (version, policy, pubs)
    return policy


def published_values(policy: Policy, as_of: dt.date) -> list[dict[str, Any]]:
    """The published values layered into ``policy`` (from :func:`policy_in_force`), for
    display beside the parameters: value, dates, 文号 and article, who published and
    when, and whether it is the value in force on ``as_of``. No query: the rows are the
    ones the layered policy was built from."""
    with _cache_lock:
        hit = _cache.get(policy.id)
    if hit is None or hit[1] is not policy:
        return []
    out = []
    for pub in hit[2]:
        param = policy.parameters.get(pub.parameter)
        if param is None:
            continue
        entry = param.at(as_of)
        out.append(
            {
                "name": pub.parameter,
                "title": param.title.zh,
                "value": format(Decimal(pub.value).normalize(), "f"),
                "since": pub.effective_from,
                "until": pub.effective_until,
                "document_number": pub.document_number,
                "article": pub.article,
                "published_by": pub.published_by.get_username(),
                "published_at": pub.published_at,
                "in_force": entry is not None and entry.start == pub.effective_from
                and entry.line is None,
            }
        )
    return out


def publications(
    *, policy_id: str | None = None, include_withdrawn: bool = True
) -> list[ParameterPublication]:
    """Published values for the pages, the API and the CLI: by policy, parameter, date."""
    qs = ParameterPublication.objects.select_related("published_by", "withdrawn_by", "reform")
    if policy_id is not None:
        qs = qs.filter(policy_id=policy_id)
    if not include_withdrawn:
        qs = qs.filter(withdrawn_at__isnull=True)
    return list(qs.order_by("policy_id", "parameter", "effective_from", "id"))


def layer_publications(base: Policy, pubs: Iterable[ParameterPublication]) -> Policy:
    """``base`` with each publication layered on its parameter, in the given order."""
    pubs = list(pubs)
    if not pubs:
        return base
    params = dict(base.parameters)
    for pub in pubs:
        if pub.parameter not in params:
            # The file dropped the parameter since: the publication has nothing to change.
            continue
        # Where an open-ended value stops: at a value the file dates later, or at another
        # open-ended publication's start; never where an earlier value merely resumes
        # after a bounded publication, nor at a bounded one's start (either would bring
        # the old value back once the bounded one ends).
        stops = {e.start for e in base.parameters[pub.parameter].entries} | {
            p.effective_from
            for p in pubs
            if p.parameter == pub.parameter and p.effective_until is None
        }
        params[pub.parameter] = layer_publication(
            params[pub.parameter],
            value=Fraction(Decimal(pub.value)),
            start=pub.effective_from,
            until=pub.effective_until,
            article=publication_article(pub),
            stops=stops,
        )
    digest = hashlib.sha256(base.sha256.encode())
    digest.update(json.dumps([_pub_key(p) for p in pubs], ensure_ascii=False).encode())
    return replace(base, parameters=params, sha256=digest.hexdigest())


def _pub_key(pub: ParameterPublication) -> list[Any]:
    return [
        pub.pk,
        pub.parameter,
        format(Decimal(pub.value).normalize(), "f"),
        pub.effective_from.isoformat(),
        pub.effective_until.isoformat() if pub.effective_until else None,
    ]


def publication_article(pub: ParameterPublication) -> str:
    """The cited basis shown wherever the value is: 文号, article, who published, when."""
    who = pub.published_by.get_username() if pub.published_by_id else "?"
    day = pub.published_at.date().isoformat()
    return f"{pub.document_number} {pub.article}（{who} 于 {day} 发布 / published by {who} on {day}）"


def layer_publication(
    param: Parameter,
    *,
    value: Fraction,
    start: dt.date,
    until: dt.date | None,
    article: str,
    stops: Iterable[dt.date] | None = None,
) -> Parameter:
    """``param`` with ``value`` in force from ``start`` to ``until`` (inclusive; None =
    until the next of ``stops`` after ``start`` — by default the starts already on the
    timeline — or for ever).

    Entries before ``start`` keep their values and end the day before; an entry that
    runs past ``until`` resumes the day after.

    >>> a = TimelineEntry(dt.date(2022, 1, 1), dt.date(2026, 12, 31), Fraction(3, 4), "a", 1)
    >>> b = TimelineEntry(dt.date(2027, 1, 1), None, Fraction(17, 20), "b", 2)
    >>> p = Parameter("r", None, "ratio", None, (a, b), 1)
    >>> new = layer_publication(p, value=Fraction(4, 5), start=dt.date(2026, 1, 1), until=None,
    ...                         article="new")
    >>> [(x.start.isoformat(), x.end and x.end.isoformat(), x.value) for x in new.entries]
    [('2022-01-01', '2025-12-31', Fraction(3, 4)), ('2026-01-01', '2026-12-31', Fraction(4, 5)), ('2027-01-01', None, Fraction(17, 20))]

    >>> e = TimelineEntry(dt.date(2022, 1, 1), None, Fraction(3, 4), "old", 1)
    >>> p = Parameter("r", None, "ratio", None, (e,), 1)
    >>> new = layer_publication(p, value=Fraction(4, 5), start=dt.date(2026, 1, 1), until=None,
    ...                         article="new")
    >>> [(x.start.isoformat(), x.end and x.end.isoformat(), x.value) for x in new.entries]
    [('2022-01-01', '2025-12-31', Fraction(3, 4)), ('2026-01-01', None, Fraction(4, 5))]
    """
    if until is None:
        # Open-ended: in force until the next dated value already on the timeline (the
        # file may hold a future change enacted earlier, e.g. a new ratio from 2027).
        starts = [e.start for e in param.entries] if stops is None else stops
        later = [day for day in starts if day > start]
        if later:
            until = min(later) - _ONE_DAY
    far = dt.date.max
    end = until or far
    out: list[TimelineEntry] = []
    for e in param.entries:
        e_end = e.end or far
        if e_end < start or e.start > end:
            out.append(e)
            continue
        if e.start < start:
            out.append(replace(e, end=start - _ONE_DAY))
        if until is not None and e_end > until:
            out.append(replace(e, start=until + _ONE_DAY))
    out.append(TimelineEntry(start, until, value, article, None))
    out.sort(key=lambda x: x.start)
    return replace(param, entries=tuple(out))


def evaluate(policy_id: str, facts: Mapping[str, Any], as_of: dt.date | str) -> Decision:
    """:func:`kechuang.rules.evaluate` against the law in force (nested facts)."""
    return rules.evaluate(policy_in_force(policy_id), facts, as_of)


def evaluate_flat(policy: str | Policy, row: Mapping[str, Any], as_of: dt.date | str) -> Decision:
    """:func:`kechuang.rules.evaluate_flat` against the law in force (a flat facts row).

    ``policy`` is an id, or a policy already obtained from :func:`policy_in_force`."""
    if isinstance(policy, str):
        policy = policy_in_force(policy)
    return rules.evaluate_flat(policy, row, as_of)
