"""What list pages share: the query string their page links and filters carry."""

from __future__ import annotations

from django.http import HttpRequest


def query_without_page(request: HttpRequest) -> str:
    """The request's filters, without ``page``: page links add their own."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
