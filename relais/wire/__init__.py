"""Wire format: Avro encoding of record values and CloudEvents headers."""
