"""The i-Parapheur operations the sandbox answers, one function each.

Each takes the state, the request element and the caller's login, and returns the response
envelope and whether a dossier was created (for the after-commit fault). Texts marked (U)
in ``docs/sandbox-iparapheur.md`` were not found in a real source.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from sandbox.iparapheur import signing
from sandbox.iparapheur.soap import (
    SoapClientError,
    binary,
    doc,
    el,
    message_retour,
    q,
    response,
    text,
)
from sandbox.iparapheur.state import Document, Dossier, IparapheurState, LogLine

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
DOSSIER_ID = re.compile(r"^\w[\w@.(){}\-_éèêàùçëïü]{0,600}$")
VISIBILITIES = ("PUBLIC", "SERVICE", "CONFIDENTIEL")


@dataclass(frozen=True)
class Answer:
    body: bytes
    created: bool = False


Operation = Callable[[IparapheurState, etree._Element, str | None], Answer]


def _timestamp(line: LogLine) -> str:
    return line.timestamp.astimezone().isoformat(timespec="milliseconds")


def _log_dossier(line: LogLine, *, nom: str | None = None,
                 accessible: str | None = None) -> etree._Element:
    children = [
        el("timestamp", _timestamp(line)),
        el("nom", nom if nom is not None else line.nom),
        el("status", line.status),
        el("annotation", line.annotation if nom is None else ""),
    ]
    if accessible is not None:
        children.append(el("accessible", accessible))
    return el("LogDossier", None, *children)


def _nil(name: str) -> etree._Element:
    element = el(name)
    element.set(XSI_NIL, "true")
    return element


def creer_dossier(state: IparapheurState, request: etree._Element, login: str | None) -> Answer:
    """``CreerDossier``: KO for a missing field or a DossierID already held (i-Parapheur's
    text), else the dossier enters its circuit."""
    def ko(message: str) -> Answer:
        return Answer(response("CreerDossierResponse", [message_retour("KO", message)]))

    dossier_id = text(request, "DossierID") or ""
    for name in ("TypeTechnique", "SousType", "DossierID", "Visibilite"):
        if not text(request, name):
            return ko(f"Le champ {name} est obligatoire")
    if not DOSSIER_ID.match(dossier_id):
        return ko(f"DossierID invalide: {dossier_id}")
    visibility = text(request, "Visibilite") or ""
    if visibility not in VISIBILITIES:
        return ko(f"Visibilite invalide: {visibility}")
    principal = binary(request.find(q("DocumentPrincipal")))
    if principal is None or not principal[0]:
        return ko("Le document principal est obligatoire")
    annexes: list[tuple[str, Document]] = []
    for annex in request.iterfind(f"{q('DocumentsAnnexes')}/{q('DocAnnexe')}"):
        content = binary(annex.find(q("fichier")))
        if content is None:
            raise SoapClientError("Unmarshalling Error: DocAnnexe without fichier")
        annexes.append((text(annex, "nom") or "annexe", Document(content[0], content[1])))
    acte_element = request.find(q("MetaDataTdtACTES"))
    acte = None
    if acte_element is not None and acte_element.get(XSI_NIL) != "true":
        acte = {name: text(acte_element, name) or "" for name in
                ("nature", "classification", "date", "objet")}
    metadata = {
        text(item, "nom") or "": text(item, "valeur") or ""
        for item in request.iterfind(f"{q('MetaData')}/{q('MetaDonnee')}")
    }
    dossier = Dossier(
        dossier_id=dossier_id,
        technical_type=text(request, "TypeTechnique") or "",
        sub_type=text(request, "SousType") or "",
        visibility=visibility,
        document=Document(principal[0], principal[1], text(request, "NomDocPrincipal")),
        annexes=annexes,
        deadline=text(request, "DateLimite"),
        public_annotation=text(request, "AnnotationPublique"),
        private_annotation=text(request, "AnnotationPrivee"),
        xpath=text(request, "XPathPourSignatureXML"),
        acte=acte,
        metadata=metadata,
        fate="sign",
        login=login,
    )
    if not state.create(dossier):
        return ko(f"Le nom de dossier est déjà présent dans le Parapheur: dossierID = {dossier_id}")
    return Answer(
        response("CreerDossierResponse", [message_retour("OK", f"Dossier {dossier_id} soumis "
                                                               "dans le circuit")]),
        created=True,
    )


def get_histo_dossier(state: IparapheurState, request: etree._Element,
                      login: str | None) -> Answer:
    """``GetHistoDossier``: every ``LogDossier`` (no ``accessible``, as i-Parapheur 5)."""
    dossier = state.dossiers.get((request.text or "").strip())
    if dossier is None:
        return Answer(response("GetHistoDossierResponse", [
            message_retour("KO", f"Dossier {(request.text or '').strip()} inconnu")]))
    children = [_log_dossier(line) for line in dossier.history]
    children.append(message_retour("OK", ""))
    return Answer(response("GetHistoDossierResponse", children))


def get_dossier(state: IparapheurState, request: etree._Element, login: str | None) -> Answer:
    """``GetDossier``: the dossier, its signature once signed, the bordereau as last annex."""
    dossier_id = (request.text or "").strip()
    dossier = state.dossiers.get(dossier_id)
    if dossier is None:
        return Answer(response("GetDossierResponse", [
            el("TypeTechnique", ""), el("SousType", ""), el("DossierID", dossier_id),
            el("Visibilite", ""), _nil("DateLimite"),
            message_retour("KO", f"Dossier {dossier_id} inconnu")]))
    signed = dossier.signature is not None
    children = [el("TypeTechnique", dossier.technical_type), el("SousType", dossier.sub_type),
                el("DossierID", dossier.dossier_id)]
    if signed and dossier.is_xml:
        children.append(doc("FichierPES", dossier.signature or b"", "text/xml"))
    children += [
        el("AnnotationPublique", dossier.public_annotation or ""),
        el("AnnotationPrivee", dossier.private_annotation or ""),
        el("Visibilite", dossier.visibility),
        el("DateLimite", dossier.deadline) if dossier.deadline else _nil("DateLimite"),
        doc("DocPrincipal", dossier.document.content, dossier.document.content_type),
        el("NomDocPrincipal", dossier.document.name or dossier.dossier_id),
    ]
    if signed and not dossier.is_xml:
        children.append(doc("SignatureDocPrincipal", dossier.signature or b"",
                            "application/x-pkcs7-signature"))
    annexes = [
        el("DocAnnexe", None, el("nom", name), doc("fichier", d.content, d.content_type),
           el("mimetype", d.content_type), el("encoding", "UTF-8"))
        for name, d in dossier.annexes
    ]
    if signed:
        annexes.append(el("DocAnnexe", None, el("nom", f"{dossier.dossier_id}-bordereau.pdf"),
                          doc("fichier", signing.BORDEREAU, "application/pdf"),
                          el("mimetype", "application/pdf"), el("encoding", "UTF-8")))
    if annexes:
        children.append(el("DocumentsAnnexes", None, *annexes))
    if dossier.metadata:
        children.append(el("MetaDonnees", None, *[
            el("MetaDonnee", None, el("nom", k), el("valeur", v))
            for k, v in dossier.metadata.items()]))
    children.append(message_retour("OK", ""))
    return Answer(response("GetDossierResponse", children))


def archiver_dossier(state: IparapheurState, request: etree._Element,
                     login: str | None) -> Answer:
    """``ArchiverDossier``: a finished dossier (``Archive``) is erased (EFFACER) or archived."""
    dossier_id = text(request, "DossierID") or ""
    action = text(request, "ArchivageAction") or "ARCHIVER"
    dossier = state.dossiers.get(dossier_id)
    if dossier is None or dossier.archived:
        return Answer(response("ArchiverDossierResponse", [
            message_retour("KO", f"Dossier {dossier_id} inconnu")]))
    if dossier.status != "Archive":
        return Answer(response("ArchiverDossierResponse", [
            message_retour("KO", f"Le dossier {dossier_id} n'est pas terminé")]))
    if action == "EFFACER":
        del state.dossiers[dossier_id]
        state.count("dossiers_erased", login)
        url: etree._Element = el("URL")
        url.set(XSI_NIL, "true")
    else:
        dossier.archived = True
        state.count("dossiers_archived", login)
        url = el("URL", f"/alfresco/archives/{dossier_id}")
    return Answer(response("ArchiverDossierResponse", [
        url, message_retour("OK", f"Dossier {dossier_id} archivé")]))


def effacer_dossier_rejete(state: IparapheurState, request: etree._Element,
                           login: str | None) -> Answer:
    """``EffacerDossierRejete``: only a rejected dossier can be erased."""
    dossier_id = (request.text or "").strip()
    dossier = state.dossiers.get(dossier_id)
    if dossier is None:
        return Answer(response("EffacerDossierRejeteResponse", [
            message_retour("KO", f"Dossier {dossier_id} inconnu")]))
    if not dossier.status.startswith("Rejet"):
        return Answer(response("EffacerDossierRejeteResponse", [
            message_retour("KO", f"Le dossier {dossier_id} n'est pas rejeté")]))
    del state.dossiers[dossier_id]
    state.count("rejected_erased", login)
    return Answer(response("EffacerDossierRejeteResponse", [
        message_retour("OK", f"Dossier {dossier_id} supprimé")]))


def rechercher_dossiers(state: IparapheurState, request: etree._Element,
                        login: str | None) -> Answer:
    """``RechercherDossiers``: one ``LogDossier`` per dossier (``nom`` = DossierID, its last
    status, ``accessible``), filtered by ids, type, sub-type, status; ``NombreDossiers`` caps."""
    ids = [(e.text or "").strip() for e in request.iterfind(q("DossierID"))]
    technical_type = text(request, "TypeTechnique")
    sub_type = text(request, "SousType")
    status = text(request, "Status")
    limit_text = text(request, "NombreDossiers")
    limit = int(limit_text) if limit_text and limit_text.isdigit() else 500
    found = []
    candidates = [state.dossiers[i] for i in ids if i in state.dossiers] if ids else list(
        state.dossiers.values())
    for dossier in candidates:
        if technical_type and dossier.technical_type != technical_type:
            continue
        if sub_type and dossier.sub_type != sub_type:
            continue
        if status and dossier.status != status:
            continue
        found.append(_log_dossier(dossier.history[-1], nom=dossier.dossier_id,
                                  accessible="Recuperable" if dossier.status == "Archive"
                                  else "OK"))
        if len(found) >= limit:
            break
    return Answer(response("RechercherDossiersResponse", found))


OPERATIONS: dict[str, Operation] = {
    "CreerDossierRequest": creer_dossier,
    "GetHistoDossierRequest": get_histo_dossier,
    "GetDossierRequest": get_dossier,
    "ArchiverDossierRequest": archiver_dossier,
    "EffacerDossierRejeteRequest": effacer_dossier_rejete,
    "RechercherDossiersRequest": rechercher_dossiers,
}
