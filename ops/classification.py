"""A member's classification for operators and integrators: ``relais classification
show|refresh``.

``show`` reads the snapshot the hub keeps (``relais.acts.classifications``) and
lists the codes a submission may use: natures (``nature_code``) with the
typologies allowed for their files, and the tree of matières (``matieres``: the
path of codes, 2 to 5 levels). ``refresh`` asks the member's TdT through the acts
stages' own :func:`agents.acts.classification.refresh_classification` (a 7-3
"unchanged" answer keeps the snapshot).
"""

from __future__ import annotations

from typing import Any

from agents.acts.classification import refresh_classification
from ops.acts_deps import classifications_view, operator_acts_deps
from relais.actes.classification import Classification, Matiere, parse_retour_classification
from relais.errors import UnknownMemberError
from relais.kafka.publisher import Publisher
from relais.members.directory import MemberDirectory
from relais.settings import Settings
from relais.wire.avro_codec import AvroCodec


async def kept_classification(settings: Settings, siren: str) -> Classification | None:
    """The classification the hub keeps for ``siren``; None when it keeps none."""
    view = classifications_view(settings, AvroCodec())
    await view.start()
    await view.stop()
    snapshot = view.get(siren)
    return parse_retour_classification(snapshot["xml"]) if snapshot is not None else None


async def refresh(settings: Settings, siren: str) -> Classification:
    """Fetch the member's classification from its TdT and keep it, as the acts stages do."""
    codec = AvroCodec()
    members = MemberDirectory(settings.bootstrap_servers, codec)
    await members.start()
    await members.stop()
    member = members.get(siren)
    if member is None:
        raise UnknownMemberError(f"no member {siren} (or it is inactive)")
    classifications = classifications_view(settings, codec)
    await classifications.start()
    journal = Publisher(settings.bootstrap_servers, codec, client_id="relais-cli")
    await journal.start()
    deps = operator_acts_deps(settings, codec, members=members,
                              classifications=classifications, journal=journal)
    try:
        return await refresh_classification(deps, member)
    finally:
        await journal.stop()
        await classifications.stop()
        await deps.connectors.aclose()


def _matiere(node: Matiere) -> dict[str, Any]:
    return {"code": node.code, "label": node.label,
            "children": [_matiere(child) for child in node.children]}


def as_dict(classification: Classification) -> dict[str, Any]:
    """Every code of the classification, JSON-ready."""
    return {
        "date_version": classification.date_version.isoformat(),
        "natures": [
            {"code": n.code, "abbreviation": n.abbreviation, "label": n.label,
             "typologies": [{"code": t.code, "label": t.label} for t in n.typologies]}
            for n in classification.natures
        ],
        "matieres": [_matiere(node) for node in classification.matieres],
    }


def _matiere_lines(nodes: tuple[Matiere, ...], prefix: str, depth: int) -> list[str]:
    lines = []
    for node in nodes:
        code = f"{prefix}{node.code}"
        lines.append(f"  {'  ' * depth + code:<12} {node.label}")
        lines += _matiere_lines(node.children, f"{code}.", depth + 1)
    return lines


def as_lines(siren: str, classification: Classification) -> list[str]:
    """The classification as ``relais classification show`` prints it."""
    lines = [f"classification of {classification.date_version.isoformat()} kept for {siren} "
             "(send it as classification_date)",
             "natures (nature_code), with the typologies allowed for their files:"]
    for nature in classification.natures:
        lines.append(f"  {nature.code}  {nature.abbreviation:<3} {nature.label}")
        lines += [f"        {t.code:<8} {t.label}" for t in nature.typologies]
        if not nature.typologies:
            lines.append("        (no typology listed: typologies are not checked)")
    lines.append("matières (matieres: the codes of a path, 2 to 5 levels, e.g. 7.1 is [7, 1]):")
    lines += _matiere_lines(classification.matieres, "", 0)
    return lines
