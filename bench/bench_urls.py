"""Bench-only URLconf: the application's URLs plus two bare views the benchmark compares with.

Loaded by bench/redeem.py with ``ROOT_URLCONF=bench_urls`` and ``bench/`` on ``PYTHONPATH``; never
by the application itself. Both views sit under ``/api/`` and wrk sends them the same
``Authorization: Token`` header as the real endpoints (they ignore it), so every request of the
comparison goes through the same WSGI handler and middleware stack (aptic.handlers).
"""

from __future__ import annotations

import json
import os

from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from aptic import urls as aptic_urls


def bare_cheque(request: HttpRequest, code: str) -> JsonResponse:
    """The minimal same read as the cheque check: one SELECT by code, a JSON answer."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, value_cents, expires_on FROM vouchers_cheque WHERE code = %s", [code]
        )
        row = cursor.fetchone()
    if row is None:
        return JsonResponse({"code": "unknown_cheque"}, status=404)
    status, value_cents, expires_on = row
    return JsonResponse(
        {"code": code, "status": status, "value_cents": value_cents, "expires_on": expires_on}
    )


@csrf_exempt
def bare_redeem(request: HttpRequest) -> JsonResponse:
    """pgbench's transaction behind a bare Django view: the floor of any Django endpoint here.

    Parses the same JSON body as ``POST /api/v1/redemptions/`` and runs exactly the SQL pgbench
    runs (the conditional UPDATE by code, the INSERTs of the redemption and its line) in one
    transaction; no authentication, rate limit, check, audit or serializer. Writes as the
    pgbench provider (``BENCH_FLOOR_IDS``: provider, agent, service), on pgbench's pool.
    """
    provider, agent, service = (int(n) for n in os.environ["BENCH_FLOOR_IDS"].split(","))
    code = json.loads(request.body)["codes"][0]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE vouchers_cheque SET status = 'redeemed' WHERE code = %s"
            " AND status = 'active' AND expires_on >= CURRENT_DATE RETURNING id, value_cents",
            [code],
        )
        row = cursor.fetchone()
        if row is None:
            return JsonResponse({"code": "already_redeemed"}, status=409)
        cheque_id, value_cents = row
        cursor.execute(
            "INSERT INTO redemption_redemption (provider_id, site_id, agent_id, service_id,"
            " amount_cents, cheque_count, status, created_at, idempotency_key,"
            " request_fingerprint) VALUES (%s, NULL, %s, %s, %s, 1, 'active', now(), NULL, '')"
            " RETURNING id",
            [provider, agent, service, value_cents],
        )
        redemption_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO redemption_redemptionline (redemption_id, cheque_id, value_cents, live)"
            " VALUES (%s, %s, %s, true)",
            [redemption_id, cheque_id, value_cents],
        )
    return JsonResponse({"id": redemption_id}, status=201)


urlpatterns = [
    path("api/v1/bench/bare/<str:code>/", bare_cheque, name="bench_bare_cheque"),
    path("api/v1/bench/floor/", bare_redeem, name="bench_bare_redeem"),
    path("", include(aptic_urls)),
]

handler400 = aptic_urls.handler400
handler403 = aptic_urls.handler403
handler404 = aptic_urls.handler404
handler500 = aptic_urls.handler500
