"""relais/actes."""
