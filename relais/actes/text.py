"""Text that must travel in ISO-8859-1 ACTES files.

ACTES files are ISO-8859-1, and S²LOW takes the objet in Latin-1 too. Some
typographic characters users type are outside Latin-1 (œ, ’, “ ”, –, …, €).
Relais' policy, applied by the builders before writing free text:

1. ``fold_to_latin1`` replaces a fixed table of such characters by Latin-1
   equivalents (``œ`` → ``oe``, ``’`` → ``'``, ``€`` → ``EUR``…);
2. any character still outside Latin-1 (e.g. Chinese, emoji) is refused with a
   ``Reason(code="charset")`` rather than written as a character reference
   that a prefecture system may not read back.
"""

from __future__ import annotations

from relais.errors import Reason

_FOLD_TABLE: dict[int, str] = {
    ord("œ"): "oe",
    ord("Œ"): "OE",
    ord("Ÿ"): "Y",
    ord("š"): "s",
    ord("Š"): "S",
    ord("ž"): "z",
    ord("Ž"): "Z",
    ord("ƒ"): "f",
    ord("‘"): "'",
    ord("’"): "'",
    ord("‚"): "'",
    ord("‛"): "'",
    ord("‹"): "<",
    ord("›"): ">",
    ord("“"): '"',
    ord("”"): '"',
    ord("„"): '"',
    ord("‐"): "-",
    ord("‑"): "-",
    ord("‒"): "-",
    ord("–"): "-",
    ord("—"): "-",
    ord("−"): "-",
    ord("…"): "...",
    ord("€"): "EUR",
    ord("‰"): "o/oo",
    ord("•"): "-",
    ord("™"): "TM",
    ord("\u2009"): " ",  # thin space
    ord("\u202f"): "\u00a0",  # narrow no-break space, common before ; : ! ? in French
    ord("\u2007"): " ",
    ord("\u200b"): "",  # zero-width space
}


def fold_to_latin1(text: str) -> str:
    """Replace the typographic characters of the fold table by Latin-1 equivalents."""
    return text.translate(_FOLD_TABLE)


def is_latin1(text: str) -> bool:
    """True when every character of ``text`` has an ISO-8859-1 code."""
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def latin1_reasons(text: str, field: str) -> list[Reason]:
    """A ``charset`` reason listing the characters of ``text`` outside ISO-8859-1."""
    bad = sorted({c for c in text if ord(c) > 0xFF})
    if not bad:
        return []
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in bad[:5])
    return [Reason(field, "charset", f"characters outside ISO-8859-1 cannot be sent: {shown}")]
