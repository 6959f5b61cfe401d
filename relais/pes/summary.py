"""PES files as JSON-able summaries (for ``relais parse`` and notifications)."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from relais.errors import Reason, ValidationError
from relais.pes.acquit import PesAcquit, acquit_from_root
from relais.pes.aller import PesAller, aller_from_root
from relais.pes.codes import ACQUIT_ROOT, ALLER_ROOT
from relais.pes.xml_safe import XML_TOO_LARGE, PesLimits, parse_pes

_FIRST_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)")


def pes_root_name(head: bytes) -> str | None:
    """``PES_Aller`` or ``PES_ACQUIT`` when the first element of ``head`` is one of them."""
    for match in _FIRST_TAG.finditer(head):
        name = match.group(1).split(b":")[-1].decode("ascii", "replace")
        return name if name in (ALLER_ROOT, ACQUIT_ROOT) else None
    return None


def aller_summary(pes: PesAller) -> dict[str, Any]:
    """Header fields, counts and signatures of a PES_Aller."""
    return {
        "root": ALLER_ROOT,
        "id": pes.root_id,
        "fields": {
            "version": pes.version, "typ_fic": pes.typ_fic, "nom_fic": pes.nom_fic,
            "emetteur": pes.emetteur_sigle, "dte_str": pes.dte_str, "id_post": pes.id_post,
            "id_coll": pes.id_coll, "cod_col": pes.cod_col, "cod_bud": pes.cod_bud,
            "libelle_col_bud": pes.libelle_col_bud,
        },
        "bordereaux": [asdict(b) for b in pes.bordereaux],
        "bordereau_count": len(pes.bordereaux),
        "piece_count": pes.piece_count,
        "pj_count": pes.pj_count,
        "facture_count": pes.facture_count,
        "signed": pes.signed,
        "signatures": [
            {"parent": s.parent, "parent_id": s.parent_id, "intact": s.intact,
             "problems": list(s.problems), "signing_time": s.signing_time,
             "references": [asdict(r) for r in s.references]}
            for s in pes.signatures
        ],
    }


def acquit_summary(acquit: PesAcquit) -> dict[str, Any]:
    """Header, overall outcome and each element's outcome of a PES_ACQUIT."""
    return {
        "root": ACQUIT_ROOT,
        "outcome": acquit.outcome.value,
        "fields": {
            "nom_fic": acquit.nom_fic, "typ_fic": acquit.typ_fic, "id_post": acquit.id_post,
            "id_coll": acquit.id_coll, "cod_col": acquit.cod_col, "cod_bud": acquit.cod_bud,
            "libelle_col_bud": acquit.libelle_col_bud,
        },
        "elements": [
            {**asdict(e), "domain_label": e.domain_label} for e in acquit.elements
        ],
    }


def summarise_pes_file(path: Path, limits: PesLimits) -> dict[str, Any]:
    """Read a PES_Aller or PES_ACQUIT file and summarise it (``ValidationError`` when it
    is past ``limits`` or not readable; ``OSError`` when it cannot be read)."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        message = f"{path.name} has {size} bytes, more than the {limits.max_bytes} read"
        raise ValidationError(message, reasons=[Reason("xml", XML_TOO_LARGE, message)])
    root = parse_pes(path.read_bytes(), limits)
    name = root.tag.split("}")[-1] if isinstance(root.tag, str) else ""
    summary = (
        acquit_summary(acquit_from_root(root)) if name == ACQUIT_ROOT
        else aller_summary(aller_from_root(root))
    )
    return {"file": str(path), "size": size, **summary}
