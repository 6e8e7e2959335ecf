"""The WSGI application: API requests carrying a token take a shorter middleware stack.

A request to ``/api/`` with ``Authorization: Token …`` is authenticated by its token or refused
(401) before any session is looked at, and its answer is JSON: sessions, CSRF, the second
factor, messages, htmx, the content security policy and the sign-in lock-out have nothing to do
for it. Scanning apps send every check and redemption this way, so those middlewares are left
out of its path (``TOKEN_API_MIDDLEWARE``, an ordered subset of ``MIDDLEWARE``); every other
request, including the API used with a browser session, goes through the whole stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

API_PREFIX = "/api/"
TOKEN_KEYWORD = b"token"


def carries_api_token(path: str, authorization: str | bytes) -> bool:
    """Is this an API request with ``Authorization: Token …``?

    Read exactly as the token authentication reads the header (bytes, split on ASCII
    whitespace, keyword in any case): a header one would take for a token and the other not
    must never skip the session's checks.
    """
    if not path.startswith(API_PREFIX):
        return False
    if isinstance(authorization, str):
        authorization = authorization.encode("iso-8859-1", errors="replace")
    scheme = authorization.split()
    return bool(scheme) and scheme[0].lower() == TOKEN_KEYWORD


class TokenApiMiddleware:
    """For a Django handler class: build the chain from ``settings.TOKEN_API_MIDDLEWARE``."""

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler reads settings.MIDDLEWARE; the list is swapped only while the chain is
        # built, once per handler (for the server, when the WSGI module is imported).
        everything = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.TOKEN_API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = everything


class TokenApiHandler(TokenApiMiddleware, WSGIHandler):
    """Django's WSGI handler with ``settings.TOKEN_API_MIDDLEWARE`` instead of ``MIDDLEWARE``."""


def split_application(
    full: WSGIHandler, token_api: WSGIHandler
) -> Callable[[dict, Callable], Iterable[bytes]]:
    """One WSGI callable sending token API requests to ``token_api``, the rest to ``full``."""

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        authorization = environ.get("HTTP_AUTHORIZATION")
        if authorization and carries_api_token(environ.get("PATH_INFO", ""), authorization):
            return token_api(environ, start_response)
        return full(environ, start_response)

    return application
