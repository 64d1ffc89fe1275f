"""Normalisation behind linkage keys: the same person written differently maps to one string."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

_NOT_LETTER = re.compile(r"[^a-z ]+")
_SPACES = re.compile(r"\s+")
_PNC = re.compile(r"[^0-9A-Z]+")
# Letters Unicode does not decompose into a base letter plus an accent.
_FOLD = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ß": "ss", "ı": "i"})


def normalise_name(forename: str | None, surname: str | None) -> str:
    """Fold case and accents, drop punctuation, join hyphenated parts: "Zoë O'Brien-Hall" -> "zoe obrienhall"."""
    text = f"{forename or ''} {surname or ''}"
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    ascii_letters = "".join(ch for ch in folded if not unicodedata.combining(ch))
    # Apostrophes and hyphens vary between systems (O'Brien, OBrien, O Brien): remove them outright.
    squeezed = ascii_letters.replace("'", "").replace("\u2019", "").replace("-", "")
    return _SPACES.sub(" ", _NOT_LETTER.sub(" ", squeezed)).strip()


def name_dob_key(forename: str | None, surname: str | None, dob: date | None) -> str | None:
    """The clear text a person's name + date-of-birth blind index is computed over, or None when incomplete."""
    name = normalise_name(forename, surname)
    if not name or dob is None:
        return None
    return f"{name}|{dob.isoformat()}"


def pnc_key(pnc_id: str | None) -> str | None:
    """Normalised police national computer id (upper case, separators removed), or None."""
    if not pnc_id:
        return None
    key = _PNC.sub("", pnc_id.upper())
    return key or None
