"""Relais core: settings, errors, logging, the message contract and the composition root."""

__version__ = "0.1.0"
