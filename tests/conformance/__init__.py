"""tests/conformance."""
