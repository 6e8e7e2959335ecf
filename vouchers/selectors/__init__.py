"""Reads of the vouchers app that depend on who asks, one module per concern."""

from .orders import (  # noqa: F401
    funder_choices,
    order_approval_queue,
    order_get,
    order_list,
    programme_get,
    programme_list,
    programmes_orderable,
    service_category_get,
    service_category_list,
)
