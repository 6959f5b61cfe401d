"""The registry look-up flow: members (and the hub) ask who a SIREN or SIRET is."""
