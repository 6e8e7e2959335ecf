"""« Où utiliser mes chèques ? »: the public directory of accredited places. No login."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from aptic.listing import query_without_page
from orgs.audit import client_ip
from redemption.ratelimit import Limit, RateLimited, hit

from .forms import DirectorySearchForm
from .selectors import directory_search

PER_PAGE = 20


@require_safe
def directory(request: HttpRequest) -> HttpResponse:
    try:
        # Per IP, like the public cheque page: the list is public, scraping it is not free.
        hit(Limit("directory", settings.PUBLIC_DIRECTORY_RATE_PER_IP), client_ip(request) or "-")
    except RateLimited as limited:
        response = render(
            request,
            "directory/limited.html",
            {"retry_after": limited.retry_after},
            status=429,
        )
        response["Retry-After"] = str(limited.retry_after)
        return response
    form = DirectorySearchForm(request.GET or None)
    page = None
    if not form.is_bound or form.is_valid():
        filters = form.cleaned_data if form.is_bound else {}
        places = directory_search(
            postcode=filters.get("cp", ""),
            departement=filters.get("departement", ""),
            service=filters.get("service", ""),
        )
        page = Paginator(places, PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "directory/search.html",
        {
            "form": form,
            "page": page,
            "query": query_without_page(request),
            "near": form.is_bound and form.is_valid() and form.cleaned_data.get("cp"),
        },
    )
