"""The acts flow (@CTES contrôle de légalité): validation → delivery to the TdT →
status polling → prefecture messages. One module per stage."""
