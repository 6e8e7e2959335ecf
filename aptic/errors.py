"""Domain errors and the API error shape shared by every app.

Services raise a :class:`DomainError` subclass with a stable machine ``code``; views turn it into a
French message, the API into ``{"code": ..., "detail": ...}`` with the error's HTTP status.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response


class DomainError(Exception):
    """A business rule refused the operation. Nothing was changed."""

    code = "invalid"
    status_code = status.HTTP_400_BAD_REQUEST
    default_message = _("L'opération n'est pas possible.")

    def __init__(self, message: Any = None, *, code: str | None = None, **extra: Any) -> None:
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        self.extra = extra
        super().__init__(str(self.message))

    def as_payload(self) -> dict[str, Any]:
        return {"code": self.code, "detail": str(self.message), **self.extra}


class ValidationFailed(DomainError):
    """Input that does not satisfy a rule (422-like for the API, field error for forms)."""

    code = "invalid"
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: Any = None, *, field: str | None = None, **kwargs: Any) -> None:
        self.field = field
        super().__init__(message, **kwargs)


class Conflict(DomainError):
    """The object is not in a state that allows the operation."""

    code = "conflict"
    status_code = status.HTTP_409_CONFLICT


class NotAllowed(DomainError):
    """The acting membership lacks the permission key for the operation."""

    code = "permission_denied"
    status_code = status.HTTP_403_FORBIDDEN
    default_message = _("Vous n'avez pas le droit de faire cette opération.")


class NotFound(DomainError):
    """The object does not exist or is outside the caller's reach (never tell which)."""

    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND
    default_message = _("Introuvable.")


_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "parse_error",
    exceptions.Throttled: "throttled",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Answer every API error as ``{"code", "detail", ...}``."""
    if isinstance(exc, DomainError):
        response = Response(exc.as_payload(), status=exc.status_code)
        if "retry_after" in exc.extra:
            response["Retry-After"] = str(exc.extra["retry_after"])
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Introuvable."))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    from rest_framework.views import exception_handler  # late: rest_framework.views imports us

    response = exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handler answers in JSON for /api/.

    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "code": "invalid",
            "detail": str(_("Certaines données envoyées ne sont pas valides.")),
            "errors": exc.detail,
        }
        return response

    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
    if code is None:
        code = getattr(exc, "default_code", "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    payload: dict[str, Any] = {"code": code, "detail": str(detail)}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        payload["retry_after"] = int(exc.wait)
    response.data = payload
    return response


def form_add_error(form: Any, error: DomainError) -> None:
    """Show a service's refusal on the form: on its field when it names one, else at the top."""
    field = getattr(error, "field", None)
    form.add_error(field if field in form.fields else None, str(error.message))
