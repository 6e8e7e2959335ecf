"""Helpers for the tests that need PostgreSQL itself."""

from __future__ import annotations

from django.db import connection


def another_connection():
    """A second PostgreSQL session on the test database, in autocommit: what another process
    (an administrator, a migration) would do while the test's connection stays open."""
    import psycopg

    settings_dict = connection.settings_dict
    return psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        dbname=settings_dict["NAME"],
        autocommit=True,
    )
