"""The API's session authentication, held to the second factor like the pages."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication

from aptic.errors import NotAllowed

from .middleware import owes_second_factor


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """Django's session, refused while its person still owes a second-factor code.

    ``TwoFactorMiddleware`` already answers such API requests 403; this keeps the rule where the
    API decides who is signed in, whatever reaches it.
    """

    def authenticate(self, request):
        found = super().authenticate(request)
        if found is not None and owes_second_factor(request._request):
            raise NotAllowed(
                _("Saisissez votre code de double authentification pour continuer."),
                code="two_factor_required",
            )
        return found


class VerifiedSessionScheme(OpenApiAuthenticationExtension):
    """Describes the session cookie in the OpenAPI schema, as for Django's own session class."""

    target_class = "security.authentication.VerifiedSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
