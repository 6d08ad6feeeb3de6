"""Statements of the busiest write (issue 6), planned once per connection.

PostgreSQL plans a statement each time it receives its text. For the voucher
application's read of everything it checks (seven subqueries over six tables)
planning cost twice what running it did: about 150 µs of 250 µs of the server's
CPU. A prepared statement is planned once per connection (PostgreSQL keeps the
generic plan once it is no worse than the custom ones). Django's PostgreSQL
cursors bind parameters on the client, so the statement is prepared with
``PREPARE``/``EXECUTE`` in SQL. Other databases run the text as it is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from django.db import connection

#: Names prepared on each open database connection (a new connection has none).
_prepared: WeakKeyDictionary[Any, set[str]] = WeakKeyDictionary()


@cache
def _numbered(sql: str) -> tuple[str, str, tuple[str, ...]]:
    """The statement's name, its text with ``%(name)s`` as ``$n``, and the
    parameter names in ``$n`` order.

    >>> _numbered("SELECT %(a)s, %(b)s, %(a)s")[1:]
    ('SELECT $1, $2, $1', ('a', 'b'))
    """
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = re.sub(r"%\((\w+)\)s", number, sql)
    name = "kc_" + hashlib.sha256(sql.encode()).hexdigest()[:16]
    return name, text.replace("%%", "%"), tuple(names)


def execute(cursor: Any, sql: str, params: Mapping[str, Any]) -> None:
    """Run ``sql`` (``%(name)s`` parameters only) with ``params`` on ``cursor``;
    on PostgreSQL as a statement prepared once per connection."""
    if connection.vendor != "postgresql":
        cursor.execute(sql, params)
        return
    name, text, names = _numbered(sql)
    done = _prepared.setdefault(connection.connection, set())
    if name not in done:
        # Not undone by a rollback: a prepared statement lasts as long as its session.
        cursor.execute(f"PREPARE {name} AS {text}")
        done.add(name)
    cursor.execute(_call(name, names), [params[n] for n in names])


def _call(name: str, names: tuple[str, ...]) -> str:
    return f"EXECUTE {name}({', '.join(['%s'] * len(names))})" if names else f"EXECUTE {name}"


def execute_all(
    cursor: Any, statements: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """Run the statements in order and return the rows of each; on PostgreSQL
    prepared (as :func:`execute`) and sent in one round trip.

    Each statement still reads with its own snapshot (PostgreSQL takes one per
    statement of a multi-statement query in READ COMMITTED), so a read after a
    lock sees what was committed while the lock was awaited. A statement that
    fails stops the rest, as it would one by one."""
    if connection.vendor != "postgresql":
        out = []
        for sql, params in statements:
            cursor.execute(sql, params)
            out.append(cursor.fetchall() if cursor.description is not None else [])
        return out
    done = _prepared.setdefault(connection.connection, set())
    numbered = [(_numbered(sql), params) for sql, params in statements]
    new = {name: text for (name, text, _), _ in numbered if name not in done}
    for name, text in new.items():
        # Once per connection, one at a time: a PREPARE survives a rollback, so one that
        # fails (a lock timeout, a cancel) must not leave those before it unrecorded.
        cursor.execute(f"PREPARE {name} AS {text}")
        done.add(name)
    calls, args = [], []
    for (name, _, names), params in numbered:
        calls.append(_call(name, names))
        args += [params[n] for n in names]
    cursor.execute(";\n".join(calls), args)
    out = []
    while True:
        out.append(cursor.fetchall() if cursor.description is not None else [])
        if not cursor.nextset():
            return out
