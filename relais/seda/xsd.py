"""The official SEDA schemas, compiled once per version, and strict validation.

The schemas are outside oracles read from ``<reference>/seda/seda-2.1`` and
``seda-2.2`` (``RELAIS_REFERENCE_DIR``, see :func:`relais.actes.xsd.reference_dir`),
never copied into the project. Their two W3C imports (``xml.xsd``, ``xlink.xsd``)
resolve to ``<reference>/seda/w3c``; nothing is fetched from the network. Compiling
takes about a second: :func:`validate_async` compiles and validates off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from relais.actes.xsd import hardened_parser, reference_dir
from relais.errors import ConfigurationError, Reason, ValidationError
from relais.seda.model import SedaVersion

_W3C = {
    "http://www.w3.org/2001/xml.xsd": "xml.xsd",
    "http://www.w3.org/1999/xlink.xsd": "xlink.xsd",
}


def seda_reference_dir() -> Path:
    """``<reference>/seda``: the official schemas per version and real samples."""
    path = reference_dir() / "seda"
    if not path.is_dir():
        raise ConfigurationError(f"SEDA reference folder not found: {path}")
    return path


class _SedaResolver(etree.Resolver):
    """Resolves the schema set inside ``<reference>/seda``; refuses anything else."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self._root = root.resolve()

    def resolve(  # type: ignore[override]  # lxml-stubs omit the context argument
        self, system_url: str, public_id: str, context: object
    ) -> object:
        if system_url in _W3C:
            candidate = self._root / "w3c" / _W3C[system_url]
        else:
            candidate = Path(system_url.removeprefix("file://")).resolve()
        if not candidate.is_relative_to(self._root) or not candidate.is_file():
            raise ConfigurationError(f"schema location {system_url!r} is not in {self._root}")
        return self.resolve_filename(str(candidate), context)  # type: ignore[attr-defined]


def main_schema_file(root: Path, version: SedaVersion) -> Path:
    return root / f"seda-{version.value}" / f"seda-{version.value}-main.xsd"


@cache
def _schema_for(root: Path, version: SedaVersion) -> etree.XMLSchema:
    parser = hardened_parser()
    parser.resolvers.add(_SedaResolver(root))
    path = main_schema_file(root, version)
    if not path.is_file():
        raise ConfigurationError(f"SEDA {version.value} schema not found: {path}")
    try:
        return etree.XMLSchema(etree.parse(str(path), parser))
    except etree.XMLSchemaParseError as exc:
        raise ConfigurationError(
            f"the SEDA {version.value} schema does not compile: {exc}") from exc


def seda_schema(version: SedaVersion) -> etree.XMLSchema:
    """The compiled official schema of ``version`` (compiled once per process)."""
    return _schema_for(seda_reference_dir().resolve(), version)


def validation_errors(xml: bytes, version: SedaVersion) -> list[str]:
    """Schema errors of ``xml`` as ``line N: message`` strings (empty when valid)."""
    schema = seda_schema(version)
    try:
        document = etree.fromstring(xml, hardened_parser())
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    if document.getroottree().docinfo.internalDTD is not None:
        return ["a DOCTYPE is not allowed in a SEDA message"]  # entities stay unexpanded
    try:
        if schema.validate(document):
            return []
    except etree.XMLSchemaValidateError as exc:  # libxml2 gives up (unexpanded entities…)
        return [f"the schema validation could not complete: {exc}"]
    errors: Iterable[Any] = schema.error_log  # type: ignore[assignment]  # iterable at runtime
    return [f"line {error.line}: {error.message}" for error in errors]


class ManifestInvalidError(ValidationError):
    """A manifest Relais built fails the official schema: a bug, dead-lettered."""

    code = "seda_manifest_invalid"


def assert_valid(xml: bytes, version: SedaVersion) -> None:
    """Raise :class:`ManifestInvalidError` (one reason per schema error) unless valid."""
    errors = validation_errors(xml, version)
    if errors:
        raise ManifestInvalidError(
            f"the SEDA {version.value} manifest is not valid: {errors[0]}",
            reasons=[Reason("manifest.xml", "schema", error) for error in errors[:50]],
        )


async def validate_async(xml: bytes, version: SedaVersion) -> None:
    """:func:`assert_valid` in a worker thread (compiling and validating are slow)."""
    await asyncio.to_thread(assert_valid, xml, version)
