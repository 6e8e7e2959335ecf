"""OpenAPI post-processing: every operation documents the error answers it can give.

All API errors share one body, ``{"code", "detail", ...}`` (``aptic.errors.api_exception_handler``).
drf-spectacular documents only the success answers; this hook adds, to each operation, the
errors its shape allows, unless the view already declares that status:

- 401 and 403: every operation needs a token (or session) and a permission key;
- 400: the operation takes a body or parameters that may be invalid; 415: a body that is not
  JSON;
- 404: it names an object (path parameter, a body that refers to one) or pages through a list;
- 409: it changes state (POST), which a concurrent change or the object's state can refuse;
- 429: its view is rate-limited (the counter's checks and redemptions).
"""

from __future__ import annotations

from typing import Any

from rest_framework.views import APIView

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'An error: {"code": "<machine_code>", "detail": "<message>", ...}.',
    "properties": {
        "code": {"type": "string", "description": "Stable machine-readable reason."},
        "detail": {"type": "string", "description": "Human-readable message (French)."},
        "errors": {
            "description": "Details per field (invalid input) or per cheque (not redeemable)."
        },
        "retry_after": {"type": "integer", "description": "Seconds to wait (429)."},
    },
    "required": ["code", "detail"],
}

DESCRIPTIONS = {
    "400": "Invalid input.",
    "401": "No valid token or session.",
    "403": "The caller's organisation or role may not do this.",
    "404": "Not found, or outside the caller's organisation.",
    "409": "The object's state does not allow this now.",
    "415": "The body must be JSON (``Content-Type: application/json``).",
    "429": "Too many requests: retry after ``Retry-After`` seconds.",
}


def _throttled(callback: Any, method: str) -> bool:
    view = getattr(callback, "cls", None)
    if view is None:
        return False
    if getattr(view, "throttle_classes", None):
        return True
    # A view that chooses its throttles per method (redemptions: only POST is limited).
    return view.get_throttles is not APIView.get_throttles and method == "POST"


def document_error_responses(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular post-processing hook (``POSTPROCESSING_HOOKS``)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    callbacks = {
        (path, method.upper()): callback
        for path, _regex, method, callback in getattr(generator, "endpoints", None) or []
    }
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            parameters = operation.get("parameters", [])
            in_path = any(p.get("in") == "path" for p in parameters)
            paged = any(p.get("name") == "page" for p in parameters)
            body = "requestBody" in operation
            statuses = ["401", "403"]
            if body or parameters:
                statuses.append("400")
            if in_path or paged or body:
                statuses.append("404")
            if body:
                statuses.append("415")
            if method.upper() == "POST":
                statuses.append("409")
            if _throttled(callbacks.get((path, method.upper())), method.upper()):
                statuses.append("429")
            for status in statuses:
                operation["responses"].setdefault(
                    status, {"description": DESCRIPTIONS[status], "content": ref}
                )
    return result
