"""Answer "busy, try again" when the database could not take a lock in time."""

from __future__ import annotations

from collections.abc import Callable

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

RETRY_AFTER_SECONDS = 2


def is_lock_timeout(exc: BaseException) -> bool:
    cause = exc.__cause__
    return type(cause).__name__ in {"LockNotAvailable", "QueryCanceled"} or (
        "lock timeout" in str(exc).lower() or "database is locked" in str(exc).lower()
    )


class BusyDatabaseMiddleware:
    """A lock wait past ``lock_timeout`` becomes a 503 with Retry-After, never a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, OperationalError) or not is_lock_timeout(exception):
            return None
        message = _("Le service est très sollicité : réessayez dans quelques secondes.")
        if request.path.startswith("/api/"):
            response = JsonResponse({"code": "busy", "detail": message}, status=503)
        else:
            response = render(request, "503.html", {"message": message}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
