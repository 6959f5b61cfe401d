"""The archive connector: Vitam's external ingest API (ingest-external, admin-external
operations, access-external logbook), one per member's ``archive`` account."""
