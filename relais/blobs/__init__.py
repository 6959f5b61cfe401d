"""relais/blobs."""
