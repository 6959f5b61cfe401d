"""PES V2 names and code lists (from the DGFiP schemas shipped by S²LOW,
``xsd/Schemas_PES_v471_072015/PES_V2``: ``Rev0/PES_Aller.xsd``,
``Rev0/PES_V2_Acquit_Autonome_V2.xsd``, ``CommunAck.xsd``, ``Class_Enveloppe.xsd``)."""

from __future__ import annotations

ALLER_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
ACQUIT_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
XADES_NS = "http://uri.etsi.org/01903/v1.1.1#"

ALLER_ROOT = "PES_Aller"
ACQUIT_ROOT = "PES_ACQUIT"

#: ``TypFic`` values of a PES_Aller (``Class_Enveloppe.xsd`` documents PESALR1; real files
#: also carry PESALR2). ``PESORMC`` is the ORMC flow, not a PES_Aller.
ALLER_TYPFIC = frozenset({"PESALR1", "PESALR2"})

#: ``DomaineAck`` labels: 0-7 as Pastell's PES viewer shows them
#: (module/helios-generique/visionneuse/PESRetourVisionneuse.class.php); the schema also
#: allows 8-12 and 99, whose meaning was not found.
DOMAINE_ACK_LABELS: dict[str, str] = {
    "0": "technique",
    "1": "technique",
    "2": "technique",
    "3": "validité du certificat",
    "4": "pièce justificative",
    "5": "dépense",
    "6": "recette",
    "7": "budget",
}
DOMAINE_ACK_VALUES = frozenset([str(n) for n in range(13)] + ["99"])

#: ``NumAnoAck`` closed list (``CommunAck.xsd`` ``TNumAnoAck``).
NUM_ANO_ACK = frozenset({
    "ERREUR_CONNECTION_IMPOSSIBLE_A_LA_BASE", "ERREUR_ENCODING", "ERREUR_FLUX_VIDE",
    "ERREUR_SCHEMA_INCOMPLET", "ERREUR_CODIFICATION", "ERREUR_CODIQUE", "ERREUR_SIRET",
    "ERREUR_CODE_COLLECTIVITE_BUDGET", "ERREUR_VERSION_PES", "ERREUR_VERSION_PJ",
    "ERREUR_SIGNATURE_INVALIDE", "ERREUR_SIGNATURE_ILLISIBLE", "ERREUR_SIGNATURE_INCOMPLETE",
    "ERREUR_DOUBLON_BORDEREAU", "ERREUR_DOUBLON_PIECE", "ERREUR_DOUBLON_LIGNE",
    "ERREUR_DOUBLON_PJ", "ERREUR_PES_PARAM", "ERREUR_PES_SIGNATURE",
    "ERREUR_PES_PARAM_SIGNATURE", "ERREUR_CERTIFICAT", "ERREUR_TIMEOUT",
    "ERREUR_TAILLE_BORDEREAUX", "ERREUR_TAILLE_PIECE", "ERREUR_TAILLE_LIGNE",
    "ERREUR_PJ_SIGNEE", "ERREUR_SIGNATURE_EXTERNE", "ERREUR_AUTRE",
    "ERREUR_SIGNATURE_BORDEREAU_INVALIDE", "ERREUR_MONTANT_TVA_ZERO_NEGATIF", "ERREUR_PJ",
    "ERREUR_CUMUL_MONTANTS", "ERREUR_SIGNATURE_BORDEREAU_ILLISIBLE",
    "ERREUR_SIGNATURE_BORDEREAU_INCOMPLETE",
})
