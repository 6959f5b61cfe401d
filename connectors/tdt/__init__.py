"""connectors/tdt."""
