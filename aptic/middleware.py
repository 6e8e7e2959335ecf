"""Answer "busy, try again" when the database could not take a lock in time or was lost."""

from __future__ import annotations

from collections.abc import Callable

from django.db import InterfaceError, NotSupportedError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

RETRY_AFTER_SECONDS = 2


def is_lock_timeout(exc: BaseException) -> bool:
    cause = exc.__cause__
    return type(cause).__name__ in {"LockNotAvailable", "QueryCanceled"} or (
        "lock timeout" in str(exc).lower() or "database is locked" in str(exc).lower()
    )


def is_connection_lost() -> bool:
    """Did a database connection break under the request (server restarted, connection killed)?

    Persistent connections are not health-checked before each request (one round trip saved on
    every request): the request that meets a broken one answers "busy" and Django discards the
    connection when the request ends.
    """
    for connection in connections.all(initialized_only=True):
        raw = connection.connection
        if raw is not None and (getattr(raw, "closed", False) or getattr(raw, "broken", False)):
            return True
    return False


def is_stale_prepared_plan(exc: BaseException) -> bool:
    """Did PostgreSQL refuse a statement prepared before a migration changed a column's type?

    It keeps refusing it on that connection ("cached plan must not change result type"), so
    the connection is closed (the next request opens a fresh one) and this request answers
    "busy, try again" rather than failing.
    """
    return isinstance(exc, NotSupportedError) and "cached plan must not change result type" in (
        str(exc)
    )


class BusyDatabaseMiddleware:
    """A lock wait past ``lock_timeout``, a lost connection or a prepared plan made stale by a
    migration becomes a 503 with Retry-After."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if is_stale_prepared_plan(exception):
            for connection in connections.all(initialized_only=True):
                connection.close()
        elif not (
            isinstance(exception, OperationalError | InterfaceError)
            and (is_lock_timeout(exception) or is_connection_lost())
        ):
            return None
        message = _("Le service est très sollicité : réessayez dans quelques secondes.")
        if request.path.startswith("/api/"):
            response = JsonResponse({"code": "busy", "detail": message}, status=503)
        else:
            response = render(request, "503.html", {"message": message}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
