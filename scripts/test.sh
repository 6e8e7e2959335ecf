#!/usr/bin/env bash
# `make test`: the whole suite. Uses PostgreSQL and Redis on 127.0.0.1 when they answer (or the
# DATABASE_URL / REDIS_URL given); otherwise SQLite, and the tests that need a service skip with
# the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

answers() { # host port
  $PY - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

if [[ -z "${DATABASE_URL:-}" ]] && answers 127.0.0.1 5432; then
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/aptic
fi
if [[ -z "${REDIS_URL:-}" ]] && answers 127.0.0.1 6379; then
  export REDIS_URL=redis://127.0.0.1:6379/15
fi
echo "Database: ${DATABASE_URL:-SQLite (default)}  Redis: ${REDIS_URL:-none}"
exec $PY -m pytest "$@"
