"""Generated but realistic registry data: units (SIREN) and their establishments (SIRET).

Seeded, so a seed gives the same numbers every run. The set always holds:

- Luhn-valid numbers, some with leading zeros (``00…``);
- La Poste (SIREN 356000000): its head office ``35600000000048`` (valid by Luhn) and
  establishments valid **only** by the digit-sum rule;
- active and ceased units (``A``/``C``), open and closed establishments (``A``/``F``);
- partly diffusible individual entrepreneurs (``P``: name and street masked) and a few
  non-diffusible units (``N``: Sirene answers 403, API Entreprise 451);
- one commune (catégorie juridique 7210) per commune of :data:`COMMUNES`, with its mairie in
  the Annuaire; the demo members (Dijon, Mâcon) among them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from relais.identifiers import (
    LA_POSTE_SIREN,
    la_poste_exception_siret,
    luhn_check_digit,
    make_siret,
)


@dataclass(frozen=True)
class Commune:
    code: str  # code officiel géographique
    postal_code: str
    name: str
    siren: str | None = None  # fixed SIREN (demo members), else generated


COMMUNES: tuple[Commune, ...] = (
    Commune("21231", "21000", "DIJON", "212102313"),
    Commune("71270", "71000", "MACON", "217100072"),
    Commune("44109", "44000", "NANTES"),
    Commune("35238", "35000", "RENNES"),
    Commune("34172", "34000", "MONTPELLIER"),
    Commune("69123", "69001", "LYON"),
    Commune("01053", "01000", "BOURG-EN-BRESSE"),
    Commune("2A004", "20000", "AJACCIO"),
)

STREETS = (
    ("RUE", "DE LA REPUBLIQUE"),
    ("AV", "JEAN JAURES"),
    ("BD", "VICTOR HUGO"),
    ("PL", "DE LA MAIRIE"),
    ("RUE", "DES ECOLES"),
    ("CHE", "DES VIGNES"),
)
COMPANY_WORDS = (
    "BATIMENT",
    "INFORMATIQUE",
    "TRAVAUX",
    "CONSEIL",
    "VOIRIE",
    "ESPACES VERTS",
    "RESEAUX",
    "NETTOYAGE",
    "TRANSPORTS",
    "ELECTRICITE",
)
FIRST_NAMES = ("MARIE", "JEAN", "CAMILLE", "LUCAS", "LEA", "HUGO", "CHLOE", "LOUIS")
LAST_NAMES = ("MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "PETIT", "DURAND", "LEROY")
COMPANY_KINDS = (("5710", "SAS"), ("5499", "SARL"), ("5599", "SA"))
NAF_CODES = ("43.21A", "62.01Z", "41.20A", "81.21Z", "49.41A", "71.12B", "42.11Z")


@dataclass
class Establishment:
    siret: str
    head_office: bool
    active: bool
    closed_on: date | None
    created: date
    naf: str
    number: str
    street_type: str
    street: str
    commune: Commune


@dataclass
class Unit:
    siren: str
    name: str | None  # dénomination (None for an individual entrepreneur)
    first_name: str | None
    last_name: str | None
    legal_category: str
    naf: str
    active: bool
    closed_on: date | None
    created: date
    diffusion: str  # "O", "P" or "N" (Sirene's statutDiffusion)
    establishments: list[Establishment] = field(default_factory=list)

    @property
    def head_office(self) -> Establishment:
        return next(e for e in self.establishments if e.head_office)


@dataclass
class Dataset:
    units: dict[str, Unit]
    establishments: dict[str, tuple[Unit, Establishment]]
    mairies: dict[str, Unit]  # by commune code

    def samples(self) -> dict[str, list[str]]:
        """A few numbers of each kind, for tests, the demo and operators."""
        out: dict[str, list[str]] = {
            "communes": [u.siren for u in self.mairies.values()],
            "active_units": [],
            "ceased_units": [],
            "partly_diffusible_units": [],
            "non_diffusible_units": [],
            "leading_zero_units": [],
            "closed_establishments": [],
            "open_establishments": [],
            "la_poste_exception_sirets": [],
        }
        for unit in self.units.values():
            key = {"P": "partly_diffusible_units", "N": "non_diffusible_units"}.get(
                unit.diffusion, "active_units" if unit.active else "ceased_units"
            )
            out[key].append(unit.siren)
            if unit.siren.startswith("00"):
                out["leading_zero_units"].append(unit.siren)
            for etab in unit.establishments:
                if unit.diffusion == "O":
                    kind = "open_establishments" if etab.active else "closed_establishments"
                    out[kind].append(etab.siret)
        out["la_poste_exception_sirets"] = [
            e.siret for e in self.units[LA_POSTE_SIREN].establishments if not e.head_office
        ]
        return {key: sorted(values)[:20] for key, values in out.items()}


def _siren(rng: random.Random, taken: set[str], leading_zeros: bool) -> str:
    while True:
        payload = (
            ("00" + "".join(rng.choice("0123456789") for _ in range(6)))
            if leading_zeros
            else str(rng.randint(30_000_000, 99_999_999))
        )
        siren = payload + luhn_check_digit(payload)
        if siren not in taken and siren != LA_POSTE_SIREN:
            taken.add(siren)
            return siren


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, (end - start).days))


def _establishments(
    rng: random.Random, unit: Unit, count: int, commune: Commune
) -> list[Establishment]:
    result = []
    for index in range(count):
        nic_payload = f"{(index + 1) * 1:04d}"
        siret = make_siret(unit.siren, nic_payload)
        closed = not unit.active or (index > 0 and rng.random() < 0.25)
        closed_on = (
            (unit.closed_on or _day(rng, date(2015, 1, 1), date(2026, 6, 30))) if closed else None
        )
        street_type, street = rng.choice(STREETS)
        result.append(
            Establishment(
                siret=siret,
                head_office=index == 0,
                active=not closed,
                closed_on=closed_on,
                created=unit.created,
                naf=unit.naf,
                number=str(rng.randint(1, 120)),
                street_type=street_type,
                street=street,
                commune=commune if index == 0 else rng.choice(COMMUNES),
            )
        )
    return result


def generate(seed: int = 1, companies: int = 400) -> Dataset:
    """``companies`` generated units besides the communes and La Poste."""
    rng = random.Random(seed)  # noqa: S311 - generated test data
    taken = {c.siren for c in COMMUNES if c.siren}
    units: dict[str, Unit] = {}
    mairies: dict[str, Unit] = {}
    for commune in COMMUNES:
        siren = commune.siren or _siren(rng, taken, leading_zeros=False)
        unit = Unit(
            siren,
            f"COMMUNE DE {commune.name}",
            None,
            None,
            "7210",
            "84.11Z",
            True,
            None,
            date(1983, 3, 1),
            "O",
        )
        unit.establishments = _establishments(rng, unit, 2, commune)
        units[siren] = mairies[commune.code] = unit
    la_poste = Unit(
        LA_POSTE_SIREN, "LA POSTE", None, None, "5510", "53.10Z", True, None, date(1991, 1, 1), "O"
    )
    head = make_siret(LA_POSTE_SIREN, "0004")  # 35600000000048
    la_poste.establishments = [
        Establishment(
            head,
            True,
            True,
            None,
            la_poste.created,
            "53.10Z",
            "9",
            "RUE",
            "DU COLONEL PIERRE AVIA",
            COMMUNES[5],
        )
    ]
    for nic in ("4983", "1234", "0420", "7777"):
        siret = la_poste_exception_siret(nic)
        if siret is not None:
            la_poste.establishments.append(
                Establishment(
                    siret,
                    False,
                    True,
                    None,
                    la_poste.created,
                    "53.10Z",
                    str(rng.randint(1, 60)),
                    "RUE",
                    "DE LA POSTE",
                    rng.choice(COMMUNES),
                )
            )
    units[LA_POSTE_SIREN] = la_poste
    for index in range(companies):
        individual = rng.random() < 0.3
        siren = _siren(rng, taken, leading_zeros=index % 10 == 0)
        active = rng.random() >= 0.15
        created = _day(rng, date(1990, 1, 1), date(2024, 12, 31))
        closed_on = None if active else _day(rng, max(created, date(2010, 1, 1)), date(2026, 6, 30))
        naf = rng.choice(NAF_CODES)
        diffusion = "O"
        if individual:
            roll = rng.random()
            diffusion = "P" if roll < 0.35 else "N" if roll < 0.42 else "O"
            unit = Unit(
                siren,
                None,
                rng.choice(FIRST_NAMES),
                rng.choice(LAST_NAMES),
                "1000",
                naf,
                active,
                closed_on,
                created,
                diffusion,
            )
        else:
            code, suffix = rng.choice(COMPANY_KINDS)
            name = f"{rng.choice(LAST_NAMES)} {rng.choice(COMPANY_WORDS)} {suffix}"
            unit = Unit(siren, name, None, None, code, naf, active, closed_on, created, diffusion)
        unit.establishments = _establishments(
            rng, unit, 1 if individual else rng.randint(1, 3), rng.choice(COMMUNES)
        )
        units[siren] = unit
    establishments = {e.siret: (u, e) for u in units.values() for e in u.establishments}
    return Dataset(units, establishments, mairies)
