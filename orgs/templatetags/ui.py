"""Small template helpers shared by every app's pages: navigation links and money."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.formats import number_format

register = template.Library()


@register.inclusion_tag("includes/nav_item.html", takes_context=True)
def nav_item(context, url_name: str, label: str) -> dict:
    request = context.get("request")
    url = reverse(url_name)
    path = getattr(request, "path", "")
    # The home link is current only on the home page; others also on the pages below them.
    current = path == url if url == "/" else path.startswith(url)
    return {"url": url, "label": label, "current": current}


@register.filter
def audit_details(data: dict | None) -> list[tuple[str, str]]:
    """An audit event's data as readable « key: value » pairs (before → after when both)."""
    if not data:
        return []
    before, after = data.get("before") or {}, data.get("after") or {}
    rows = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if key in before and key in after:
            rows.append((key, f"{old} → {new}"))
        else:
            rows.append((key, str(new if key in after else old)))
    for key, value in sorted(data.items()):
        if key not in ("before", "after"):
            rows.append((key, str(value)))
    return rows


@register.filter
def audit_action(action: str) -> str:
    """An audit action in words (see :mod:`orgs.audit_labels`)."""
    from ..audit_labels import action_label

    return action_label(action)


@register.filter
def percent_from_bp(rate_bp: int | None) -> str:
    """Basis points as a French percentage: 400 → « 4 % », 450 → « 4,5 % », 425 → « 4,25 % »."""
    if rate_bp is None:
        return ""
    whole, rest = divmod(int(rate_bp), 100)
    if not rest:
        number = str(whole)
    else:
        decimals = 1 if rest % 10 == 0 else 2
        number = number_format(rate_bp / 100, decimal_pos=decimals, use_l10n=True)
    return f"{number}\u00a0%"


@register.filter
def euros(cents: int | None) -> str:
    """Integer cents as French money: 1000 → « 10,00 € » (non-breaking spaces)."""
    if cents is None:
        return ""
    value = number_format(cents / 100, decimal_pos=2, use_l10n=True, force_grouping=True)
    return f"{value}\u00a0€"
