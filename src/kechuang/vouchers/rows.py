"""Model instances from plain SQL rows, for the few reads on the busiest path
(issue 6) where compiling an ORM query costs the client more CPU than the
database spends answering it.

A row is converted column by column with the converters Django's own compiler
would apply (SQLite returns dates as text and decimals as numbers; PostgreSQL
returns JSON as text), so the instance is the one ``QuerySet.get`` would build.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of ``model`` as ``alias.column``, in field order."""
    qn = connection.ops.quote_name
    return ", ".join(f"{alias}.{qn(f.column)}" for f in model._meta.concrete_fields)


def instance(model: type[M], values: tuple[Any, ...] | list[Any]) -> M:
    """``model`` built from the values of :func:`columns` (in that order)."""
    fields = model._meta.concrete_fields
    table = model._meta.db_table
    converted = []
    for field, value in zip(fields, values, strict=True):
        col = field.get_col(table)
        for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            value = convert(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)
