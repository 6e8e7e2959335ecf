"""Web pages of the vouchers app, one module per journey."""
