"""ops/kafka."""
