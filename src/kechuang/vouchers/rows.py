"""Model instances from plain SQL rows, for the few reads on the busiest path
(issue 6) where compiling an ORM query costs the client more CPU than the
database spends answering it.

A row is converted column by column with the converters Django's own compiler
would apply (SQLite returns dates as text and decimals as numbers; PostgreSQL
returns JSON as text), so the instance is the one ``QuerySet.get`` would build.
"""

from __future__ import annotations

from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of ``model`` as ``alias.column``, in field order."""
    qn = connection.ops.quote_name
    return ", ".join(f"{alias}.{qn(f.column)}" for f in model._meta.concrete_fields)


def instance(model: type[M], values: tuple[Any, ...] | list[Any]) -> M:
    """``model`` built from the values of :func:`columns` (in that order)."""
    names, converters = _converters(model)
    converted = list(values)
    for i, col, convs in converters:
        value = converted[i]
        for convert in convs:
            value = convert(value, col, connection)
        converted[i] = value
    return model.from_db(connection.alias, names, converted)


#: Per connection (its ``ops``) and model: the attribute names, and for each
#: column that needs them, its converters. Working them out costs more than a row.
_cache: WeakKeyDictionary[Any, dict[type[Model], Any]] = WeakKeyDictionary()


def _converters(model: type[Model]) -> tuple[list[str], list[tuple[int, Any, list[Any]]]]:
    per_model = _cache.setdefault(connection.ops, {})
    found = per_model.get(model)
    if found is None:
        fields = model._meta.concrete_fields
        converters = []
        for i, field in enumerate(fields):
            col = field.get_col(model._meta.db_table)
            convs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            if convs:
                converters.append((i, col, convs))
        found = per_model[model] = ([f.attname for f in fields], converters)
    return found
