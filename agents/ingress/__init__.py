"""Ingress: reads every member's submissions topic, checks each envelope and answers.

``handler`` decides (no Kafka); ``gateway`` moves records (no decisions).
"""
