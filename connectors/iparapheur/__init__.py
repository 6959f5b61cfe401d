"""Connector to i-Parapheur (Libriciel), the members' signature service, over its SOAP API.

The contract is i-Parapheur's 3.x WSDL (namespace
``http://www.adullact.org/spring-ws/iparapheur/1.0``, SOAP 1.1 document/literal). zeep
reads the WSDL once per location (:mod:`connectors.iparapheur.wsdl`) and builds and reads
the envelopes; the HTTP exchange goes through the member's httpx client
(:mod:`connectors.iparapheur.http`), bounded in size, and replies are parsed off the
event loop (:mod:`connectors.iparapheur.client`).
"""

from connectors.iparapheur.client import IParapheurConnector
from connectors.iparapheur.http import build_iparapheur_client
from connectors.iparapheur.ids import dossier_id_for
from connectors.iparapheur.models import (
    ActeMetadata,
    Annex,
    CreateOutcome,
    DossierRequest,
    DossierStatus,
    SignatureState,
    SignedDossier,
    Visibility,
)
from connectors.iparapheur.wsdl import load_wsdl

__all__ = [
    "ActeMetadata",
    "Annex",
    "CreateOutcome",
    "DossierRequest",
    "DossierStatus",
    "IParapheurConnector",
    "SignatureState",
    "SignedDossier",
    "Visibility",
    "build_iparapheur_client",
    "dossier_id_for",
    "load_wsdl",
]
