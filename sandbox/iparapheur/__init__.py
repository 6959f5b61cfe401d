"""Sandbox i-Parapheur: the SOAP operations Relais uses, answered as i-Parapheur does."""
