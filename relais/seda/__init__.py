"""SEDA (Standard d'échange de données pour l'archivage): what Relais sends to a tiers
d'archivage and reads back. Manifests (``ArchiveTransfer`` 2.1/2.2), strict validation
against the official schemas, a lenient reader of replies, and a streaming SIP zip."""
