"""Issue 13, F9: ``relais config`` never prints a password embedded in a URL."""

from __future__ import annotations

import pytest

from relais.settings import Settings, mask_url_credentials


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("https://user:pass@registry.example.org", "https://user:***@registry.example.org"),
        ("http://svc:p%40ss:w0rd@10.0.0.1:8081/apis", "http://svc:***@10.0.0.1:8081/apis"),
        ("https://:token@host/x?y=1", "https://:***@host/x?y=1"),
        ("SASL_SSL://a:b@k1:9093,SASL_SSL://c:d@k2:9093",
         "SASL_SSL://a:***@k1:9093,SASL_SSL://c:***@k2:9093"),
        ("https://registry.example.org:8081", "https://registry.example.org:8081"),
        ("https://user@host", "https://user@host"),
        ("mailto:someone@example.org", "mailto:someone@example.org"),
        ("/var/lib/relais", "/var/lib/relais"),
    ],
)
def test_url_passwords_are_masked(value: str, shown: str) -> None:
    assert mask_url_credentials(value) == shown


def test_relais_config_masks_a_registry_url_password() -> None:
    settings = Settings.from_env({
        "RELAIS_SCHEMA_REGISTRY_URL": "https://relais:S3cr3t-pw@registry.example.org",
        "RELAIS_KAFKA_BOOTSTRAP": "broker1:9092",
    })
    rows = {row[0]: row for row in settings.describe()}
    assert rows["RELAIS_SCHEMA_REGISTRY_URL"][1] == "https://relais:***@registry.example.org"
    assert rows["RELAIS_KAFKA_BOOTSTRAP"][1] == "broker1:9092"
    assert all("S3cr3t-pw" not in " ".join(row) for row in settings.describe())
