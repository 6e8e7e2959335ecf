"""Every write of the vouchers app, one module per concern."""
