"""Create the PostgreSQL database named in DATABASE_URL when it does not exist yet."""

import os
import sys
from urllib.parse import urlsplit

url = os.environ.get("DATABASE_URL", "")
parts = urlsplit(url)
if parts.scheme not in ("postgres", "postgresql", "pgsql"):
    sys.exit(0)

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

name = parts.path.lstrip("/")
admin_url = parts._replace(path="/postgres").geturl()
with psycopg.connect(admin_url, autocommit=True) as connection:
    exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    if not exists:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"Created database {name}.")
