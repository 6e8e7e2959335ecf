"""``Authorization: Token <key>`` for scanning apps and integrations."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .models import ApiToken
from .tokens import digest


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("En-tête Authorization mal formé : attendu « Token <clé> »."),
                code="authentication_failed",
            )
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("Jeton mal formé.")) from exc
        token = (
            ApiToken.objects.select_related("membership__user", "membership__organisation")
            .filter(key_hash=digest(key))
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed(_("Jeton inconnu."))
        if not token.is_active:
            raise exceptions.AuthenticationFailed(_("Ce jeton a été révoqué."))
        membership = token.membership
        if not membership.is_active or not membership.user.is_active:
            raise exceptions.AuthenticationFailed(
                _("Ce jeton n'est plus rattaché à un membre actif.")
            )
        # The token decides the membership: it acts for exactly one organisation.
        request._request.membership = membership
        return (membership.user, token)

    def authenticate_header(self, request) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes ``Authorization: Token <key>`` in the OpenAPI schema."""

    target_class = "orgs.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Token-based authentication: `Token <key>`.",
        }
