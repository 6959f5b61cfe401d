"""sandbox/tdt."""
