"""Every PES_ACQUIT the sandbox comptable emits is a valid PES_ACQUIT.

Schema set: the DGFiP PES V2 schemas as S²LOW ships them, ``xsd/Schemas_PES_v471_072015``
(PES v4.7.1 of July 2015) in libriciel/s2low: ``PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd``
and what it includes (``CommunAck.xsd``, ``Class_SchemasCommuns.xsd`` →
``Simple_Type.xsd``, ``CommunPES.xsd``, ``Class_Enveloppe.xsd``, ``Class_EntetePES.xsd``,
``Class_Adresse.xsd``, ``Class_Bancaire.xsd``, ``Class_PJReference.xsd``). It is the most
complete official set found (S²LOW also carries a 4.9.1 and a "5.3" generation; no DGFiP
publication was found in the sources). Those files are not in ``../shared/reference`` and
may not be copied into this repository, so no test loads them (see
``docs/sandbox-helios.md``, "Schema").

Instead each ACQUIT is checked against the facts of that schema written here as code
(element order and cardinalities, enumerations, lengths and patterns of the ``V`` values),
and the checker is itself proven on the two real ACQUIT samples (one valid, one breaking
the schema on a single point) and on hand-made breaks.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

from lxml import etree

from relais.pes.acquit import read_acquit
from relais.pes.codes import ACQUIT_NS, DOMAINE_ACK_VALUES, NUM_ANO_ACK
from tests.unit.test_helios_sandbox import Box, helios, pes
from tests.unit.test_pes_checks import signed_whole_file

REFERENCE = Path(__file__).parents[2] / ".." / "shared" / "reference" / "pes"
SAMPLES = REFERENCE / "samples"

_TEXT = re.compile(r"[^\x00-\x08\x0b\x0c\x0e-\x1f]*")


def _check_v(
    element: etree._Element, pattern: str, max_len: int, base_alphanum: bool = False
) -> list[str]:
    """``base_alphanum``: a ``V_BaseAlphanum`` type (``Simple_Type.xsd``): at least one
    character that is not ``0``, and not ``" "``, ``"."`` nor ``"nc"``."""
    value = element.get("V")
    where = element.tag
    if value is None:
        return [f"{where}: no V attribute"]
    if len(value) > max_len or not re.fullmatch(pattern, value):
        return [f"{where}: V={value!r} breaks {pattern} (max {max_len})"]
    if base_alphanum and (value in (" ", ".", "nc") or not re.search("[^0]", value)):
        return [f"{where}: V={value!r} is not a V_BaseAlphanum value"]
    return []


def _sequence(parent: etree._Element, allowed: list[tuple[str, int, int | None]]) -> list[str]:
    """Children in the order of ``allowed`` (name, min, max) and nothing else."""
    names = [c.tag for c in parent if isinstance(c.tag, str)]
    problems: list[str] = []
    position = 0
    for name, low, high in allowed:
        count = 0
        while position < len(names) and names[position] == name:
            position += 1
            count += 1
        if count < low or (high is not None and count > high):
            problems.append(f"{parent.tag}: {count} {name}, expected {low}..{high}")
    if position != len(names):
        problems.append(f"{parent.tag}: unexpected {names[position:]}")
    return problems


def _erreurs(parent: etree._Element) -> list[str]:
    problems = []
    for erreur in parent.findall("Erreur"):
        problems += _sequence(erreur, [("NumAnoAck", 0, 1), ("LibelleAnoAck", 0, 1)])
        for code in erreur.findall("NumAnoAck"):
            if code.get("V") not in NUM_ANO_ACK:
                problems.append(f"NumAnoAck {code.get('V')!r} not in CommunAck.xsd")
        for label in erreur.findall("LibelleAnoAck"):
            problems += _check_v(label, _TEXT.pattern, 500)
    return problems


def schema_fact_problems(raw: bytes) -> list[str]:
    """What breaks ``PES_V2_Acquit_Autonome_V2.xsd`` in ``raw`` (empty: nothing)."""
    root = etree.fromstring(raw)
    if root.tag != f"{{{ACQUIT_NS}}}PES_ACQUIT":
        return [f"root is {root.tag}"]
    problems = _sequence(root, [("Enveloppe", 1, 1), ("EnTetePES", 1, 1), ("ACQUIT", 1, 1)])
    enveloppe = root.find("Enveloppe")
    if enveloppe is not None:
        problems += _sequence(enveloppe, [("Parametres", 1, 1), ("Emetteur", 0, 1),
                                          ("Recepteur", 0, 1)])
        parametres = enveloppe.find("Parametres")
        if parametres is not None:
            problems += _sequence(parametres, [("Version", 1, 1), ("TypFic", 1, 1),
                                               ("NomFic", 1, 1)])
            problems += [p for e in parametres.findall("Version")
                         for p in _check_v(e, r"0*[1-9][0-9]?", 2)]
            for name, width in (("TypFic", 32), ("NomFic", 100)):
                problems += [p for e in parametres.findall(name)
                             for p in _check_v(e, r".+", width, base_alphanum=True)]
        for card in ("Emetteur", "Recepteur"):
            for found in enveloppe.findall(card):
                problems += _sequence(found, [("Sigle", 0, 1), ("Adresse", 0, 1)])
                for name, width in (("Sigle", 32), ("Adresse", 38)):
                    problems += [p for e in found.findall(name)
                                 for p in _check_v(e, r".+", width, base_alphanum=True)]
    entete = root.find("EnTetePES")
    if entete is not None:
        problems += _sequence(entete, [
            ("DteStr", 1, 1), ("IdPost", 1, 1), ("LibellePoste", 0, 1), ("IdColl", 1, 1),
            ("FinJur", 0, 1), ("CodCol", 1, 1), ("CodBud", 0, 1), ("LibelleColBud", 0, 1)])
        for name, pattern, width, alphanum in (
                ("DteStr", r"\d{4}-\d{2}-\d{2}", 10, False), ("IdPost", r".+", 7, True),
                ("IdColl", r"[0-9]*", 14, False), ("CodCol", r"[0-9a-zA-Z]+", 3, True),
                ("CodBud", r"[0-9a-zA-Z]*", 2, False), ("LibelleColBud", r".+", 38, True)):
            problems += [p for e in entete.findall(name)
                         for p in _check_v(e, pattern, width, alphanum)]
        for dte in entete.findall("DteStr"):
            date.fromisoformat(str(dte.get("V")))
    acquit = root.find("ACQUIT")
    if acquit is not None:
        problems += _sequence(acquit, [("EnTeteAcquit", 1, 1), ("ElementACQUIT", 1, None)])
        for entete_acquit in acquit.findall("EnTeteAcquit"):
            problems += _sequence(entete_acquit, [("IdVer", 1, 1)])
        for idver in acquit.findall("EnTeteAcquit/IdVer"):
            problems += _check_v(idver, r"[0-9]*", 2)
        for element in acquit.findall("ElementACQUIT"):
            by_number = _sequence(element, [
                ("DomaineAck", 1, 1), ("EtatAck", 1, 1), ("NumBord", 0, 1),
                ("ExerciceBord", 0, 1), ("Erreur", 0, None), ("DetailPiece", 0, None)])
            by_id = _sequence(element, [
                ("DomaineAck", 1, 1), ("EtatAck", 1, 1), ("IdUnique", 0, 1),
                ("Erreur", 0, None), ("DetailPiece", 0, None)])
            if by_number and by_id:
                problems += by_number
            for domain in element.findall("DomaineAck"):
                if domain.get("V") not in DOMAINE_ACK_VALUES:
                    problems.append(f"DomaineAck {domain.get('V')!r}")
            for etat in element.findall("EtatAck"):
                problems += _check_v(etat, r"[01]", 1)
            for name, pattern, width in (("NumBord", r"[0-9]*", 7),
                                         ("ExerciceBord", r"[0-9]*", 4),
                                         ("IdUnique", r"[0-9a-zA-Z]*", 50)):
                problems += [p for e in element.findall(name)
                             for p in _check_v(e, pattern, width)]
            problems += _erreurs(element)
            for piece in element.findall("DetailPiece"):
                problems += _sequence(piece, [("NumPiece", 1, 1), ("Erreur", 0, None),
                                              ("DetailLigne", 0, None)])
                problems += [p for e in piece.findall("NumPiece")
                             for p in _check_v(e, r"[0-9]*", 13)]
                problems += _erreurs(piece)
                for line in piece.findall("DetailLigne"):
                    problems += _sequence(line, [("NumLigne", 1, 1), ("Erreur", 0, None)])
                    problems += [p for e in line.findall("NumLigne")
                                 for p in _check_v(e, r"[0-9]*", 13)]
                    problems += _erreurs(line)
    return problems


def with_pj(raw: bytes, *ids: str) -> bytes:
    """``raw`` with a ``PES_PJ`` holding one PJ per IdUnique."""
    pjs = b"".join(b'<PJ><IdUnique V="' + i.encode() + b'"/></PJ>' for i in ids)
    return raw.replace(b"</PES_DepenseAller>", b"</PES_DepenseAller><PES_PJ>" + pjs
                       + b"</PES_PJ>")


async def emitted_acquits() -> AsyncIterator[tuple[str, bytes]]:
    """One ACQUIT per case the sandbox comptable can answer."""
    cases: list[tuple[str, str, bytes, dict[str, object]]] = [
        ("ok", "sicoval", with_pj(pes("A1", bordereaux=2), "PJ2015A1", "PJ2015A2"), {}),
        ("duplicate-bordereau-and-pj", "sicoval", with_pj(pes("A2"), "PJ2015A1"), {}),
        ("wrong-siret", "other", pes("A3"), {}),
        ("unknown-budget", "sicoval", pes("A4", cod_bud="99"), {}),
        ("bad-signature", "sicoval", signed_whole_file().replace(b"55.22", b"55.23"),
         {"signature_check": "helios"}),
        ("partial", "sicoval", pes("A6", bordereaux=3).replace(b'"2372"', b'"2390"'),
         {"partial_rate": 1.0}),
        ("ko", "sicoval", with_pj(pes("A7").replace(b'"2372"', b'"2391"'), "PJX"),
         {"ko_rate": 1.0}),
    ]
    boxes: dict[str, Box] = {}
    contexts = {login: helios(login) for login in ("sicoval", "other")}
    for login, context in contexts.items():
        boxes[login] = await context.__aenter__()
    try:
        for name, login, content, knobs in cases:
            box = boxes[login]
            await box.knobs(**{"ko_rate": 0.0, "partial_rate": 0.0, "signature_check": "s2low",
                               **knobs})
            imported = await box.connector.import_pes(content, f"{name}.xml")
            box.clock.now += timedelta(seconds=11)
            yield name, await box.connector.get_acquit(imported.transaction_id)
    finally:
        for context in contexts.values():
            await context.__aexit__(None, None, None)


def _sample(name: str) -> bytes:
    path = SAMPLES / name
    assert path.is_file(), f"reference sample missing: {path}"
    return path.read_bytes()


def test_the_fact_checker_on_the_real_samples() -> None:
    """S²LOW's sample is valid; STELA's breaks the schema on one point only: its CodCol
    ``000`` is not a ``V_BaseAlphanum`` (real output does not always validate)."""
    assert schema_fact_problems(_sample("s2low_pes_acquit.xml")) == []
    assert schema_fact_problems(
        _sample("006111_190130123456-ACK-A3020100_A0000IDL_KO.xml")
    ) == ["CodCol: V='000' is not a V_BaseAlphanum value"]


def test_the_fact_checker_catches_breaks() -> None:
    raw = _sample("s2low_pes_acquit.xml")
    broken = {
        raw.replace(b'<DomaineAck V="5"/>', b'<DomaineAck V="13"/>'): "DomaineAck",
        raw.replace(b'<EtatAck V="1"/>', b'<EtatAck V="2"/>', 1): "EtatAck",
        raw.replace(b'<NumBord V="1847"/>', b'<NumBord V="12345678"/>'): "NumBord",
        raw.replace(b"<ACQUIT>", b"<ACQUIT><Extra/>"): "unexpected",
        raw.replace(b'<IdVer V="2"/>', b'<IdVer V="2"/><IdVer V="2"/>'): "IdVer",
    }
    for document, expected in broken.items():
        problems = schema_fact_problems(document)
        assert any(expected in p for p in problems), (expected, problems)


EXPECTED_OUTCOMES = {
    "ok": "acknowledged", "duplicate-bordereau-and-pj": "rejected", "wrong-siret": "rejected",
    "unknown-budget": "rejected", "bad-signature": "rejected",
    "partial": "partially-accepted", "ko": "rejected",
}


async def test_every_emitted_acquit_follows_the_schema_facts() -> None:
    seen = {}
    async for name, raw in emitted_acquits():
        assert schema_fact_problems(raw) == [], name
        seen[name] = read_acquit(raw).outcome.value
    assert seen == EXPECTED_OUTCOMES

