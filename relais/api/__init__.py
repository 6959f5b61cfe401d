"""relais/api."""
