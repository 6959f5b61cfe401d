"""Flows: ids, state transitions and the notifications members receive about them."""
