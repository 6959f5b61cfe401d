"""Thin, documented wrappers over aiokafka used by every hub process."""
