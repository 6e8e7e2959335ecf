"""Small template helpers shared by every app's pages: navigation links and money."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.formats import number_format

register = template.Library()


@register.inclusion_tag("includes/nav_item.html", takes_context=True)
def nav_item(context, url_name: str, label: str) -> dict:
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    current = bool(match and match.view_name == url_name)
    return {"url": reverse(url_name), "label": label, "current": current}


@register.filter
def euros(cents: int | None) -> str:
    """Integer cents as French money: 1000 → « 10,00 € » (non-breaking spaces)."""
    if cents is None:
        return ""
    value = number_format(cents / 100, decimal_pos=2, use_l10n=True, force_grouping=True)
    return f"{value}\u00a0€"
