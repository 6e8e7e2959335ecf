"""``Authorization: Token <key>`` for scanning apps and integrations."""

from __future__ import annotations

import functools

from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from aptic import rows

from .models import ApiToken, Membership, Organisation, User
from .tokens import digest


@functools.cache
def _token_query(db: str) -> tuple[str, list]:
    qn = connections[db].ops.quote_name
    layout = [
        (ApiToken, rows.columns(ApiToken, "t", db)),
        (Membership, rows.columns(Membership, "m", db)),
        (User, rows.columns(User, "u", db)),
        (Organisation, rows.columns(Organisation, "o", db)),
    ]

    def fk(model, name: str) -> str:
        return qn(model._meta.get_field(name).column)

    sql = (
        f"SELECT {', '.join(c for _, cols in layout for c in cols.select)}"  # noqa: S608 - _meta
        f" FROM {qn(ApiToken._meta.db_table)} t"
        f" INNER JOIN {qn(Membership._meta.db_table)} m ON m.id = t.{fk(ApiToken, 'membership')}"
        f" INNER JOIN {qn(User._meta.db_table)} u ON u.id = m.{fk(Membership, 'user')}"
        f" INNER JOIN {qn(Organisation._meta.db_table)} o"
        f" ON o.id = m.{fk(Membership, 'organisation')}"
        f" WHERE t.{qn(ApiToken._meta.get_field('key_hash').column)} = %s"
    )
    return sql, layout


def token_for_digest(key_hash: str) -> ApiToken | None:
    """The token with its membership, user and organisation, as ``select_related`` gives them.

    Read on every API request, from SQL written once (the ORM compiling this four-table join
    cost more than running it).
    """
    db = router.db_for_read(ApiToken)
    sql, layout = _token_query(db)
    with rows.prepared_cursor(db) as cursor:
        cursor.execute(sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    token, membership, user, organisation = rows.instances(layout, db, row)
    Membership._meta.get_field("user").set_cached_value(membership, user)
    Membership._meta.get_field("organisation").set_cached_value(membership, organisation)
    ApiToken._meta.get_field("membership").set_cached_value(token, membership)
    return token


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
        token = token_for_digest(digest(key))
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
