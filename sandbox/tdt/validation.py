"""The checks of ``actes_transac_create.php``, in S²LOW's order and with its words.

Read from libriciel/s2low: ``public.ssl/modules/actes/actes_transac_create.php`` (the order
of the checks and their messages), ``ActesTransaction.class.php`` (``NUMBER_REGEXP``,
``addFile``: the file type is sniffed from the content, never from the name; ``save``: the
first two classification levels; the ``dbFields`` limits) and ``class/DataObject.php``
(``validate``: the "doit être présent" and "est trop long" lines). A refusal is one
message, the text S²LOW sends after ``KO``; :func:`check_acte_post` returns the first one
S²LOW would send, or the accepted post.

Not checked here because S²LOW does not check them when it accepts a post: that the
matières exist in the authority's classification and that the typologies fit the nature.
The sandbox's préfecture answers such an acte with an ``AnomalieActe`` later, as @CTES does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relais.actes.codes import NATURE_BY_CODE
from sandbox.tdt.forms import FormFile, RawForm
from sandbox.tdt.php import is_numeric, php_empty

NUMBER_RE = re.compile(r"^([A-Z0-9][A-Z0-9_]{0,13})?[A-Z0-9]$")
CODE_PJ_RE = re.compile(r"^[A-Z0-9_]{5}$")
_DATE_SET_RE = re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$")
SUBJECT_MAX = 499

try:
    PARIS: Any = ZoneInfo("Europe/Paris")
except ZoneInfoNotFoundError:  # pragma: no cover - hosts without tz data
    from datetime import UTC as PARIS

_EXTENSIONS = {
    "application/pdf": "pdf",
    "application/xml": "xml",
    "text/xml": "xml",
    "image/jpeg": "jpg",
    "image/png": "png",
}


class Refused(Exception):
    """S²LOW refuses the post with ``message`` (sent as ``KO``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PostedFile:
    """A file S²LOW accepted: the name posted, the content type it sniffed, and the upload
    it is read from (its spool: never read whole)."""

    posted_name: str
    mimetype: str
    upload: FormFile

    @property
    def size(self) -> int:
        return self.upload.size

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self.mimetype]


@dataclass(frozen=True)
class ActeSubmission:
    """A post that passed every check of ``actes_transac_create.php``."""

    nature_code: int
    nature_descr: str
    number: str
    subject: str
    decision_date: date
    matieres: tuple[int, ...]
    document_papier: bool
    type_acte: str
    type_pj: tuple[str, ...]
    main: PostedFile
    annexes: tuple[PostedFile, ...]
    en_attente: bool
    must_signed: bool
    #: ``acte_pdf_file_sign``: the document's detached signature, read as text
    #: (``ActesTransaction::addSign``: the file's content, right-trimmed).
    signature: str | None = None

    @property
    def classification(self) -> str:
        return ".".join(str(m) for m in self.matieres)


SNIFF_BYTES = 4096
"""What :func:`sniff` reads of a file: its head."""


def sniff(data: bytes) -> str:
    """The content type ``mime_content_type`` (libmagic) reports for the kinds S²LOW knows."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"<?xml"):
        return "text/xml"
    if not data:
        return "application/x-empty"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def extension_of(mimetype: str) -> str:
    """The extension S²LOW gives a file of this content type ("" when it refuses it)."""
    return _EXTENSIONS.get(mimetype, "")


def basename(name: str) -> str:
    """PHP's ``basename`` on Linux."""
    return name.rstrip("/").rsplit("/", 1)[-1]


def is_future(decision_date: str, now: datetime) -> bool:
    """``strtotime($decision_date) > time()`` for the dates ``strtotime`` reads as days."""
    match = re.fullmatch(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", decision_date.strip())
    if match is None:
        return False
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return False
    return datetime.combine(day, time(0), tzinfo=PARIS) > now


def truthy(value: str | None) -> bool:
    """PHP truthiness of a request string."""
    return not php_empty(value)


def upload_error(file: FormFile) -> str | None:
    """``FileUploader::verifOK``'s message for one uploaded file, or None."""
    if not file.filename:
        return "Aucun fichier n'a été présenté"
    if file.size == 0:
        return "Le fichier semble vide"
    return None


def _add_file(
    role: str, file: FormFile, code_pj: str, nature: str, matieres: list[str], acte_is_xml: bool
) -> tuple[PostedFile | None, str | None]:
    """``ActesTransaction::addFile`` for an acte (``role`` "acte") or an annex ("attachment")."""
    mimetype = sniff(file.head(SNIFF_BYTES))
    ext = _EXTENSIONS.get(mimetype, "")
    name = basename(file.filename)
    if role == "acte":
        if ext not in ("pdf", "xml"):
            return None, (
                f'Le fichier de l\'acte " {name} " est de type " {mimetype} ". '
                "Fichier PDF ou XML requis."
            )
        if ext == "xml":
            if nature != "5":
                return (
                    None,
                    "Seuls les documents budgétaires et financiers peuvent être au format XML.",
                )
            if matieres[:2] != ["7", "1"]:
                return (
                    None,
                    "Seule la classification 7.1 est autorisée pour la transmission au format XML",
                )
    else:
        if ext not in ("pdf", "jpg", "png", "xml"):
            return None, (
                f'Le fichier attaché " {name} " est de type " {mimetype} ". '
                "Fichier PDF, XML, PNG ou JPEG requis."
            )
        if acte_is_xml and ext != "pdf":
            return None, "Les pièces jointes doivent être au format PDF avec un acte au format XML"
    if code_pj and CODE_PJ_RE.fullmatch(code_pj) is None:
        return None, "Le code de la PJ doit faire 5 caractères"
    return PostedFile(file.filename, mimetype, file), None


def check_acte_post(
    form: RawForm,
    *,
    now: datetime,
    number_taken: Any,
    classification_date: date | None,
    api: bool = True,
) -> ActeSubmission:
    """The accepted post, or :class:`Refused` with the first message S²LOW would answer.

    ``number_taken(number)`` says whether the authority already has a transaction with this
    number (any type, any status). The subject is read as ISO-8859-1 when ``api`` is 1 in the
    POST or the query string (``utf8_encode``), as UTF-8 otherwise (S²LOW's web form).
    """
    nature = form.text("nature_code")
    en_attente = truthy(form.text("en_attente"))
    must_signed = truthy(form.text("must_signed"))
    classif = [form.text(f"classif{i}") for i in range(1, 6)]
    number = form.text("number") or ""
    if NUMBER_RE.fullmatch(number) is None:
        raise Refused("Le numéro n'est pas correct")
    decision = form.text("decision_date") or ""
    if is_future(decision, now):
        raise Refused("La date de décision est une date dans le futur")
    document_papier = truthy(form.text("document_papier"))
    raw_subject = form.first("subject") or b""
    subject = raw_subject.decode("iso-8859-1" if api else "utf-8", errors="replace")
    if number_taken(number):
        raise Refused(
            "Un acte portant le même numéro interne existe déjà dans la base de données.\n"
            "Il faut peut-être ajouter un suffixe au numéro."
        )
    mains = form.files.get("acte_pdf_file", [])
    if not mains:
        raise Refused("Aucun fichier acte n'a été posté ")
    main_file = mains[0]
    error = upload_error(main_file)
    if error:
        raise Refused(f"Erreur lors de la récéption du fichier : {error}")
    type_acte = form.text("type_acte") or ""
    if php_empty(type_acte):
        raise Refused(
            f"Erreur lors de la réception du fichier {main_file.filename} : typologie absente"
        )
    matieres_text = [c.strip() if c else "" for c in classif]
    errors = ""
    main, message = _add_file("acte", main_file, type_acte, nature or "", matieres_text, False)
    if message:
        errors += f"Erreur de validation du fichier de l'acte :\n{message}\n"
    annex_files = form.files.get("acte_attachments[]", []) + form.files.get("acte_attachments", [])
    type_pj = [v.decode("iso-8859-1") for v in form.values.get("type_pj[]", [])]
    annexes: list[PostedFile] = []
    if annex_files:
        for annex in annex_files:
            error = upload_error(annex)
            if error:
                raise Refused(f"Erreur lors de la réception du fichier : {error}")
        acte_is_xml = main is not None and main.extension == "xml"
        for i, annex in enumerate(annex_files):
            code = type_pj[i] if i < len(type_pj) else ""
            if php_empty(code):
                raise Refused(
                    f"Erreur lors de la réception du fichier annexe {annex.filename} : "
                    "typologie absente"
                )
            posted, message = _add_file(
                "attachment", annex, code, nature or "", matieres_text, acte_is_xml
            )
            if message:
                errors += f"Erreur de validation d'un fichier de pièce jointe :\n{message}\n"
            elif posted is not None:
                annexes.append(posted)
    if errors or main is None:
        raise Refused(errors)
    matieres = _classification(matieres_text)
    problems = _data_object_problems(nature, subject, decision, classification_date)
    if problems:
        raise Refused("Erreur lors de l'enregistrement de la transaction :\n" + problems)
    nature_code = int(nature or "0")
    return ActeSubmission(
        nature_code=nature_code,
        nature_descr=NATURE_BY_CODE[nature_code].label,
        number=number,
        subject=subject,
        decision_date=_decision_day(decision),
        matieres=matieres,
        document_papier=document_papier,
        type_acte=type_acte,
        type_pj=tuple(type_pj[: len(annexes)]),
        main=main,
        annexes=tuple(annexes),
        en_attente=en_attente,
        must_signed=must_signed,
        signature=_signature_text(form),
    )


def _signature_text(form: Any) -> str | None:
    """``actes_transac_create.php``: an uploaded ``acte_pdf_file_sign`` is read and
    right-trimmed (``addSign``); absent or empty, the acte has no signature."""
    signs = form.files.get("acte_pdf_file_sign", [])
    if not signs or signs[0].size == 0:
        return None
    return signs[0].read().decode("iso-8859-1").rstrip() or None


def _classification(levels: list[str]) -> tuple[int, ...]:
    """``ActesTransaction::save``: numeric levels from the first, levels 1 and 2 required."""
    codes: list[int] = []
    for i, value in enumerate(levels, start=1):
        if value and value not in ("0",) and is_numeric(value):
            codes.append(int(float(value)))
        elif i <= 2:
            raise Refused(
                "Erreur lors de l'enregistrement de la transaction :\n"
                "Les deux premiers niveaux de classification sont obligatoires."
            )
        else:
            break
    return tuple(codes)


def _decision_day(value: str) -> date:
    year, month, day = (int(part) for part in value.split("-"))
    return date(year, month, day)


def _data_object_problems(
    nature: str | None, subject: str, decision: str, classification_date: date | None
) -> str:
    """``DataObject::validate`` on the new transaction, in ``dbFields`` order."""
    problems = ""
    if not nature:
        problems += "Nature de l'acte doit être présent.\n"
    if nature not in {str(code) for code in NATURE_BY_CODE}:
        problems += "Description nature de l'acte doit être présent.\n"
    if not subject:
        problems += "Objet de l'acte doit être présent.\n"
    elif len(subject) > SUBJECT_MAX:
        problems += (
            f"Le champ Objet de l'acte est trop long ({SUBJECT_MAX} caractères maxi autorisés).\n"
        )
    if classification_date is None:
        problems += "Date classification matières/sous-matières utilisée doit être présent.\n"
    if _DATE_SET_RE.fullmatch(decision) is None:
        problems += "Date de la décision doit être présent.\n"
    else:
        try:
            _decision_day(decision)
        except ValueError:
            # PostgreSQL refuses the date: DataObject::save's own message.
            problems += "Erreur lors de la sauvegarde de la transaction."
    return problems
