"""Every write of the redemption app, one module per concern."""
