"""Statements prepared once per connection (PostgreSQL), run as text elsewhere."""

from __future__ import annotations

import pytest
from django.db import connection

from kechuang.vouchers import prepared

SQL = "SELECT %(a)s + 1, %(b)s || 'x', %(a)s * 2"


def test_named_parameters_become_numbered_once_each():
    name, text, names = prepared._numbered(SQL)
    assert text == "SELECT $1 + 1, $2 || 'x', $1 * 2"
    assert names == ("a", "b") and name.startswith("kc_")


@pytest.mark.django_db(transaction=True)
def test_it_runs_the_same_on_every_engine_and_prepares_once_per_connection():
    for _ in range(3):
        with connection.cursor() as cur:
            prepared.execute(cur, SQL, {"a": 2, "b": "y"})
            assert tuple(cur.fetchone()) == (3, "yx", 4)
    if connection.vendor != "postgresql":
        return
    name = prepared._numbered(SQL)[0]
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [name])
        assert cur.fetchone()[0] == 1
    # A new connection has none of the old one's statements: it prepares again.
    connection.close()
    with connection.cursor() as cur:
        prepared.execute(cur, SQL, {"a": 5, "b": "z"})
        assert tuple(cur.fetchone()) == (6, "zx", 10)


@pytest.mark.django_db
def test_several_statements_return_the_rows_of_each_in_order():
    other = "SELECT %(b)s || 'z' WHERE %(a)s > 0"
    statements = [
        (SQL, {"a": 1, "b": "p"}),
        (other, {"a": 0, "b": "q"}),
        (other, {"a": 1, "b": "r"}),
    ]
    for _ in range(2):  # prepared, then already prepared
        with connection.cursor() as cur:
            rows = prepared.execute_all(cur, statements)
        assert [[tuple(r) for r in each] for each in rows] == [[(2, "px", 2)], [], [("rz",)]]
