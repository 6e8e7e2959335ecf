"""``{% export_links %}``: the « Exporter en CSV / XLSX » links of a list page."""

from __future__ import annotations

from django import template

from aptic.exports import NOT_FILTERS

register = template.Library()


@register.inclusion_tag("includes/export_links.html", takes_context=True)
def export_links(context: template.Context, **extra: str) -> dict:
    """Links to the current page with its filters and ``export=csv|xlsx``: all pages, same rows.

    ``extra`` adds query parameters (e.g. which table of the page to export).
    """
    request = context["request"]
    query = request.GET.copy()
    for key in NOT_FILTERS:
        query.pop(key, None)
    for key, value in extra.items():
        query[key] = value
    links = []
    for fmt in ("csv", "xlsx"):
        query["export"] = fmt
        links.append((fmt, f"{request.path}?{query.urlencode()}"))
    return {"links": links}
