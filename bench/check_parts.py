"""Where the cheque check's CPU goes, in process: the parts it cannot do without, each timed alone.

Run by bench/redeem.py in the benchmark server's environment (production settings, Redis,
``ROOT_URLCONF=bench_urls``), with an API token and an active cheque code:

    python bench/check_parts.py <token> <code>

Prints one JSON object: microseconds of this process's CPU per call, after a warm-up, for the
whole check and the bare view through the WSGI application (no HTTP server), and for the three
parts every check needs: the token read, the rate-limit round trip to Redis, the cheque read
with its booklet, programme and eligibility (against the bare view's one-table SELECT).
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable

import django

CALLS = 2000
WARM_UP = 200


def cpu_us_per_call(call: Callable[[], object]) -> float:
    for _ in range(WARM_UP):
        call()
    started = time.process_time()
    for _ in range(CALLS):
        call()
    return (time.process_time() - started) / CALLS * 1e6


def main(token: str, code: str) -> dict[str, float]:
    django.setup()
    from django.db import connection

    from aptic.wsgi import application
    from orgs.authentication import token_for_digest
    from orgs.tokens import digest
    from redemption.services.checks import cheques_for_codes
    from redemption.throttles import counter_limits

    def get(path: str) -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token}",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        statuses = []
        answer = application(
            environ, lambda status, headers, exc_info=None: statuses.append(status)
        )
        b"".join(answer)
        answer.close()
        if not statuses[0].startswith("200"):
            raise SystemExit(f"GET {path} answered {statuses[0]}")

    def bare_select() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT status, value_cents, expires_on FROM vouchers_cheque WHERE code = %s",
                [code],
            )
            cursor.fetchone()

    key_hash = digest(token)
    found = token_for_digest(key_hash)
    if found is None:
        raise SystemExit("Unknown API token.")
    membership = found.membership
    return {
        "check": cpu_us_per_call(lambda: get(f"/api/v1/cheques/{code}/")),
        "bare": cpu_us_per_call(lambda: get(f"/api/v1/bench/bare/{code}/")),
        "token_read": cpu_us_per_call(lambda: token_for_digest(key_hash)),
        "rate_limit": cpu_us_per_call(lambda: counter_limits(membership.pk, "127.0.0.1")),
        "cheque_read": cpu_us_per_call(
            lambda: cheques_for_codes([code], provider=membership.organisation)
        ),
        "bare_select": cpu_us_per_call(bare_select),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
