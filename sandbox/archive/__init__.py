"""The sandbox archive: Vitam's external ingest API, as strict as a real archive."""
