"""``{% load dates %}``: ``{{ value|date_at_time }}`` (see :mod:`aptic.dates`)."""

from django import template

from aptic.dates import date_at_time as _date_at_time

register = template.Library()


@register.filter
def date_at_time(value):
    return _date_at_time(value)
