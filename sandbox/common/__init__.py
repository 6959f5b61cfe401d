"""Machinery shared by every partner sandbox (TLS material, client-certificate gate)."""
