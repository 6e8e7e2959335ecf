#!/usr/bin/env bash
# `make run`: migrate, load the demo data, then serve on http://127.0.0.1:8000.
# Embedded default: SQLite and in-process tasks. With DATABASE_URL and REDIS_URL set: the same
# server plus a Celery worker and beat, all in the foreground (Ctrl-C stops all three).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBUG="${DEBUG:-1}"
PY=.venv/bin/python

$PY scripts/create_database.py
$PY manage.py migrate --noinput
$PY manage.py seed_demo

if [[ -n "${DATABASE_URL:-}" && -n "${REDIS_URL:-}" ]]; then
  echo "Full stack: web + Celery worker + beat on $DATABASE_URL and $REDIS_URL"
  exec .venv/bin/honcho -f Procfile.dev start
fi
exec $PY manage.py runserver 127.0.0.1:8000
