"""Bench-only URLconf: the application's URLs plus a bare JSON view for the GET comparison.

Loaded by bench/redeem.py with ``ROOT_URLCONF=bench_urls`` and ``bench/`` on ``PYTHONPATH``; never
by the application itself.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

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


urlpatterns = [
    path("bench/bare/<str:code>/", bare_cheque, name="bench_bare_cheque"),
    path("", include(aptic_urls)),
]

handler400 = aptic_urls.handler400
handler403 = aptic_urls.handler403
handler404 = aptic_urls.handler404
handler500 = aptic_urls.handler500
