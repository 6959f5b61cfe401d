"""The archive flow: SEDA transfers to the members' archives (Vitam), replies correlated."""
