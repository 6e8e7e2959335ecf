"""Model instances from hand-written SQL, built the way the ORM builds them.

The few reads on every API request (the token, the scanned cheques) are fixed joins whose query
compilation cost more than the query itself. They are written once here as SQL over the models'
``_meta`` and turned back into ordinary model instances (``Model.from_db`` and the fields' own
database converters), so callers see exactly what ``select_related`` would have given them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import connections
from django.db.backends.utils import CursorWrapper
from django.db.models import Model


@dataclass(frozen=True)
class Columns:
    """A model's concrete fields as the ORM selects them under a table alias."""

    select: list[str]
    attnames: list[str]
    converters: list[tuple[int, list, object]]  # (position, db converters, column expression)


@functools.cache
def columns(model: type[Model], alias: str, db: str) -> Columns:
    connection = connections[db]
    fields = model._meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        col = field.get_col(alias)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((index, found, col))
    return Columns(
        select=[f"{alias}.{connection.ops.quote_name(field.column)}" for field in fields],
        attnames=[field.attname for field in fields],
        converters=converters,
    )


def instance(model: type[Model], cols: Columns, db: str, values: list) -> Model:
    """One instance from its slice of a row (``values`` is converted in place)."""
    connection = connections[db]
    for index, found, col in cols.converters:
        for converter in found:
            values[index] = converter(values[index], col, connection)
    return model.from_db(db, cols.attnames, values)


def instances(layout: list[tuple[type[Model], Columns]], db: str, row: tuple) -> list[Model]:
    """The instances of each model of ``layout``, in order, from one row; the rest is ignored."""
    values, start, built = list(row), 0, []
    for model, cols in layout:
        end = start + len(cols.attnames)
        built.append(instance(model, cols, db, values[start:end]))
        start = end
    return built


def prepared_cursor(db: str) -> CursorWrapper:
    """A cursor whose statements PostgreSQL prepares once per connection (psycopg 3).

    For the fixed statements read on every API request. The cursor binds parameters on the
    server (Django's own bind on the client, so nothing of theirs is ever prepared); psycopg
    prepares a statement from its second run (``prepare_threshold``, see settings). Wrapped as
    Django wraps its cursors: same error classes, query logging, execute wrappers, health check.
    Elsewhere, or with prepared statements turned off, Django's ordinary cursor.

    A migration that changes the type of a column these statements return makes PostgreSQL
    refuse the plans prepared before it: see ``aptic.middleware.is_stale_prepared_plan``.
    """
    connection = connections[db]
    if (
        connection.vendor != "postgresql"
        or connection.settings_dict["OPTIONS"].get("prepare_threshold") is None
    ):
        return connection.cursor()
    import psycopg

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        connection.validate_thread_sharing()
        raw = psycopg.Cursor(connection.connection)
        if connection.queries_logged:
            return connection.make_debug_cursor(raw)
        return connection.make_cursor(raw)


@functools.cache
def _insert_sql(model: type[Model], db: str, count: int) -> tuple[str, list]:
    connection = connections[db]
    qn = connection.ops.quote_name
    meta = model._meta
    fields = [
        field
        for field in meta.concrete_fields
        if not field.primary_key and not getattr(field, "generated", False)
    ]
    row = f"({', '.join(['%s'] * len(fields))})"
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)})"  # noqa: S608 - names from _meta
        f" VALUES {', '.join([row] * count)} RETURNING {qn(meta.pk.column)}"
    )
    return sql, fields


def insert(objs: list[Model], db: str = "default") -> list[Model]:
    """``bulk_create(objs)`` for new rows with database-made primary keys, from SQL made once per
    model and row count: the inserts of every redemption, spared the query compiler.

    As ``bulk_create``: each field's ``pre_save`` and ``get_db_prep_save``, no signals, no
    ``save()``; the primary keys come back by ``RETURNING`` and are set on the objects. Where the
    database cannot return them, ``bulk_create`` itself is used.
    """
    if not objs:
        return objs
    model = type(objs[0])
    connection = connections[db]
    if not connection.features.can_return_rows_from_bulk_insert:
        return model.objects.using(db).bulk_create(objs)
    sql, fields = _insert_sql(model, db, len(objs))
    params = [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection=connection)
        for obj in objs
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = cursor.fetchall()
    for obj, (key,) in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding, obj._state.db = False, db
    return objs
