"""Settings: defaults, RELAIS_* environment parsing, overrides and the masked description."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from relais.settings import Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.kafka_bootstrap == ""
    assert settings.kafka_port == 9092
    assert settings.max_submission_bytes == 256 * 1024
    assert settings.max_acte_bytes == 150 * 1024 * 1024
    assert settings.tdt_timeout_seconds == 30.0
    assert settings.log_format == "json"
    assert settings.schema_registry_password == ""
    assert settings.data_dir.name == ".relais"
    assert (settings.data_dir.parent / "pyproject.toml").is_file()
    assert settings.blob_dir == settings.data_dir / "blobs"


def test_environment_parsing_of_each_type(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "RELAIS_KAFKA_PORT": "19092",
            "RELAIS_TDT_TIMEOUT_SECONDS": "0.25",
            "RELAIS_DATA_DIR": str(tmp_path / "data"),
            "RELAIS_APP_ID": "relais-test",
            "RELAIS_KAFKA_BOOTSTRAP": "broker-1:9092,broker-2:9092",
            "UNRELATED": "ignored",
            "relais_api_port": "1",  # variable names are upper case
        }
    )
    assert settings.kafka_port == 19092 and isinstance(settings.kafka_port, int)
    assert settings.tdt_timeout_seconds == 0.25 and isinstance(settings.tdt_timeout_seconds, float)
    assert settings.data_dir == tmp_path / "data" and isinstance(settings.data_dir, Path)
    assert settings.blob_dir == tmp_path / "data" / "blobs"
    assert settings.app_id == "relais-test"
    assert settings.bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert settings.api_port == 8470


def test_every_field_is_read_from_its_environment_variable() -> None:
    samples = {
        "int": ("4242", 4242),
        "float": ("2.5", 2.5),
        "str": ("from-env", "from-env"),
        "Path": ("/srv/relais", Path("/srv/relais")),
        "bool": ("off", False),
    }
    environ = {
        f"RELAIS_{f.name.upper()}": samples[str(f.type)][0] for f in dataclasses.fields(Settings)
    }
    settings = Settings.from_env(environ)
    for f in dataclasses.fields(Settings):
        expected = samples[str(f.type)][1]
        value = getattr(settings, f.name)
        assert value == expected and type(value) is type(expected), f.name


def test_a_switch_reads_true_or_false_words_and_refuses_anything_else() -> None:
    for word, expected in (("true", True), ("ON", True), ("1", True), ("no", False),
                           (" false ", False)):
        assert Settings.from_env({"RELAIS_STAGE_OVERLAP_COMMITS": word}).stage_overlap_commits \
            is expected, word
    assert Settings.from_env({}).stage_overlap_commits is True
    with pytest.raises(ValueError, match="expected true or false"):
        Settings.from_env({"RELAIS_STAGE_OVERLAP_COMMITS": "sometimes"})


def test_bad_number_in_environment_raises() -> None:
    with pytest.raises(ValueError):
        Settings.from_env({"RELAIS_KAFKA_PORT": "ninety"})


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAIS_API_PORT", "18470")
    assert Settings.from_env().api_port == 18470


def test_overrides_win_over_environment() -> None:
    settings = Settings.from_env(
        {"RELAIS_KAFKA_PORT": "19092", "RELAIS_LOG_LEVEL": "DEBUG"}, kafka_port=29092
    )
    assert settings.kafka_port == 29092
    assert settings.log_level == "DEBUG"


def test_bootstrap_servers_uses_kafka_port_without_bootstrap() -> None:
    assert Settings.from_env({}).bootstrap_servers == "127.0.0.1:9092"
    assert Settings.from_env({"RELAIS_KAFKA_PORT": "39092"}).bootstrap_servers == (
        "127.0.0.1:39092"
    )
    assert Settings(kafka_bootstrap="kafka:9092", kafka_port=1).bootstrap_servers == "kafka:9092"


def test_describe_lists_every_field_with_its_environment_variable() -> None:
    rows = Settings.from_env({}).describe()
    names = [row[0] for row in rows]
    assert names == [f"RELAIS_{f.name.upper()}" for f in dataclasses.fields(Settings)]
    for env_name, _value, _default, help_text in rows:
        assert help_text, f"{env_name} has no help"


def test_describe_shows_effective_values_and_defaults() -> None:
    rows = {row[0]: row for row in Settings.from_env({"RELAIS_KAFKA_PORT": "19092"}).describe()}
    assert rows["RELAIS_KAFKA_PORT"][1:3] == ("19092", "9092")
    assert rows["RELAIS_DATA_DIR"][2].endswith(".relais")


def test_describe_masks_secrets() -> None:
    password = "s3cr3t-registry-pass"
    settings = Settings.from_env({"RELAIS_SCHEMA_REGISTRY_PASSWORD": password})
    assert settings.schema_registry_password == password
    rows = settings.describe()
    row = next(r for r in rows if r[0] == "RELAIS_SCHEMA_REGISTRY_PASSWORD")
    assert row[1] == "****"
    assert all(password not in cell for r in rows for cell in r)
    assert password not in repr(rows)


def test_describe_shows_an_unset_secret_as_empty() -> None:
    row = next(
        r for r in Settings.from_env({}).describe() if r[0] == "RELAIS_SCHEMA_REGISTRY_PASSWORD"
    )
    assert row[1] == ""
