"""The member registry: who may submit, and how each member reaches its partners."""
