"""Linkage: normalised keys for blind indexes, and linking referrals by them (never by clear values)."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

_NOT_LETTER = re.compile(r"[^a-z]+")
_NAME_LETTERS = frozenset({"Ll", "Lu", "Lt", "Lo"})  # Unicode letter categories but Lm (modifiers, such as ʼ)
# Marks that are accents, dropped as accents are: the combining diacritics Latin, Greek and Cyrillic letters
# decompose into, and Hebrew and Arabic vowel points (written or left out as the writer pleases). Every other
# script's marks spell the name (an Indic vowel sign, a kana voicing mark): dropped, सुनील and सोनल would be one.
# Modifier letters that spell a name: the ideographic and kana repeat marks (佐々木), the kana length mark
# (ー), the Thai and Lao repeat marks. The rest join pieces as apostrophes do (ʼ ʻ) or only stretch a line
# of Arabic script (the tatweel in محـمد): dropped, as every other separator is.
_SPELLING_MODIFIERS = frozenset("\u3005\u303b\u309d\u309e\u30fc\u30fd\u30fe\u0e46\u0ec6")
_ACCENTS = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"  # combining diacritical marks
    "\u0591-\u05c7"  # Hebrew points and cantillation
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]"  # Arabic vowel signs and Quranic marks
)
_PNC = re.compile(r"[^0-9A-Z]+")
# A police national computer id: year of the record (two digits or four), serial, check letter;
# "26/123456A", "2026/0123456A" and "26/0123456a" are one id.
PNC_ID = re.compile(r"([0-9]{2}|[0-9]{4})/([0-9]{1,7})([A-Z])", re.IGNORECASE | re.ASCII)
# Letters Unicode does not decompose into a base letter plus an accent.
_FOLD = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ß": "ss", "ı": "i"})


def normalise_name(forename: str | None, surname: str | None) -> str:
    """Each part normalised apart, then run together: "Zoë", "O'Brien-Hall" -> "zoeobrienhall"."""
    # Run together because systems split a name differently ("Ludwig van" + "Beethoven", "Ludwig" +
    # "van Beethoven"): where the forename ends is not the person's. Normalised apart, so intake
    # normalises each distinct forename and surname once, not each pairing of them (name_dob_keys).
    return normalise_name_part(forename) + normalise_name_part(surname)


def normalise_name_part(text: str | None) -> str:
    """One name part (a forename or a surname) as its letters alone, of any script, case and accents folded."""
    # Systems write what joins the pieces of a name differently (O'Brien, O´Brien, OʼBrien, O Brien, OBrien;
    # Smith-Jones, Smith–Jones, Smith Jones; Mary Ann, Maryann), and each spelling would be another blind
    # index, so a missed link: no apostrophe, dash or space of any kind is kept, only the letters.
    text = text or ""
    if text.isascii():
        # Nothing to fold: ASCII is its own NFKD form and casefolds to lower case. Most names are ASCII,
        # and intake normalises every name of a night, so skipping the Unicode passes is worth it.
        return _NOT_LETTER.sub("", text.lower())
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    # Letters of every script: a name written in Cyrillic or Greek is a name, and kept only a-z it would
    # vanish (no key, so no link) or leave the surname alone as the key (two people linked as one).
    return "".join(ch for ch in folded if _spells(ch))


def _spells(ch: str) -> bool:
    """Whether a character of a folded name spells it: a letter or a mark of its script, not an accent or joiner."""
    category = unicodedata.category(ch)
    if category in _NAME_LETTERS:
        return True
    if category == "Lm":  # the repeat and length marks spell; others (ʼ ʻ, the tatweel ـ) join or stretch
        return ch in _SPELLING_MODIFIERS
    return category in ("Mn", "Mc") and _ACCENTS.fullmatch(ch) is None


def name_dob_key(forename: str | None, surname: str | None, dob: date | None) -> str | None:
    """The clear text a person's name + date-of-birth blind index is computed over, or None when incomplete."""
    return name_dob_keys([forename], [surname], [dob])[0]


def name_dob_keys(
    forenames: Iterable[str | None],
    surnames: Iterable[str | None],
    dobs: Iterable[date | None],
    parts: dict[str | None, str] | None = None,
) -> list[str | None]:
    """name_dob_key over columns of people, normalising each distinct forename and surname once.

    A night has a few hundred distinct forenames and surnames but tens of thousands of pairings of them.
    `parts` caches normalised name parts across calls; it holds personal names, so keep it only as long as one load.
    """
    if parts is None:
        parts = {}
    keys: list[str | None] = []
    for forename, surname, dob in zip(forenames, surnames, dobs, strict=True):
        if dob is None:
            keys.append(None)
            continue
        first = parts.get(forename)
        if first is None:
            first = parts[forename] = normalise_name_part(forename)
        last = parts.get(surname)
        if last is None:
            last = parts[surname] = normalise_name_part(surname)
        name = first + last  # as normalise_name: where one part ends is not kept
        keys.append(f"{name}|{dob.isoformat()}" if name else None)
    return keys


def pnc_key(pnc_id: str | None) -> str | None:
    """A PNC id in one spelling: "2026/123456a" -> "26/0123456A"; None for none."""
    if not pnc_id:
        return None
    well_formed = PNC_ID.fullmatch(pnc_id.strip())
    if well_formed is None:
        # Validation quarantines an id of any other shape before linkage; this keeps the function total.
        return _PNC.sub("", pnc_id.upper()) or None
    year, serial, letter = well_formed.groups()
    # Systems write the year with two digits or four and drop the serial's leading zeros:
    # the same perpetrator must give the same key, or a serial perpetrator goes unlinked.
    return f"{year[-2:]}/{int(serial):07d}{letter.upper()}"


@dataclass(frozen=True)
class LinkRow:
    """A referral as linkage sees it: blind indexes and bookkeeping, never a clear value."""

    referral_id: int
    source: str
    key: str  # "source:source_ref", a stable tie-break
    received_date: date
    victim_index: str | None  # blind index of the victim's name + date of birth
    perp_keys: frozenset[str]  # "name_dob:<index>" / "pnc:<index>", only the policy's signals
    case_id: int | None = None  # set for referrals already routed
    case_open: bool = True


@dataclass(frozen=True)
class Linked:
    """What linkage found for one new referral."""

    duplicate_of: int | None  # an earlier referral from another source that this one repeats
    earlier_cases: int  # distinct earlier cases with the same perpetrator (this case excluded)
    other_victims: int  # distinct victims of those cases other than this referral's victim
    earlier_referral_ids: tuple[int, ...] = ()  # the linked earlier referrals, for raising their cases


_UNLINKED = Linked(duplicate_of=None, earlier_cases=0, other_victims=0)  # immutable, so shared


def link(new: Sequence[LinkRow], existing: Sequence[LinkRow], *, duplicate_window_days: int) -> dict[int, Linked]:
    """Link each new referral's perpetrator to earlier referrals; spot the same referral sent by two sources.

    Existing (already routed) referrals count as earlier than every new one;
    new ones are taken in order of date received, then key, so the result does
    not depend on the order rows arrive in.
    """
    by_perp: dict[str, list[LinkRow]] = defaultdict(list)
    by_victim: dict[str, list[LinkRow]] = defaultdict(list)
    case_token: dict[int, str] = {}

    def remember(row: LinkRow) -> None:
        for perp_key in row.perp_keys:
            by_perp[perp_key].append(row)
        if row.victim_index is not None:
            by_victim[row.victim_index].append(row)

    for row in existing:
        case_token[row.referral_id] = f"case:{row.case_id}"
        remember(row)
    out: dict[int, Linked] = {}
    for row in sorted(new, key=lambda r: (r.received_date, r.key, r.referral_id)):
        seen: dict[int, LinkRow] = {}
        for perp_key in row.perp_keys:
            for other in by_perp.get(perp_key, ()):
                seen[other.referral_id] = other
        victim_rows = by_victim.get(row.victim_index or "")
        if not seen and not victim_rows:
            # Most referrals share neither perpetrator nor victim with an earlier one: nothing to sort or compare.
            case_token[row.referral_id] = f"new:{row.referral_id}"
            out[row.referral_id] = _UNLINKED
            remember(row)
            continue
        earlier = sorted(seen.values(), key=lambda r: (r.received_date, r.key), reverse=True)  # most recent first
        same_victim = sorted(victim_rows or [], key=lambda r: (r.received_date, r.key), reverse=True)
        duplicate = next(
            (
                other
                for other in same_victim
                if other.source != row.source
                and other.case_open
                and abs((row.received_date - other.received_date).days) <= duplicate_window_days
                # The same perpetrator, or one side cannot say who it was (a stranger, online only).
                and (bool(other.perp_keys & row.perp_keys) or not other.perp_keys or not row.perp_keys)
            ),
            None,
        )
        token = case_token[duplicate.referral_id] if duplicate else f"new:{row.referral_id}"
        case_token[row.referral_id] = token
        other_cases = {case_token[o.referral_id] for o in earlier} - {token}
        victims = {
            o.victim_index
            for o in earlier
            if case_token[o.referral_id] in other_cases and o.victim_index and o.victim_index != row.victim_index
        }
        out[row.referral_id] = Linked(
            duplicate_of=duplicate.referral_id if duplicate else None,
            earlier_cases=len(other_cases),
            other_victims=len(victims),
            earlier_referral_ids=tuple(sorted(o.referral_id for o in earlier if case_token[o.referral_id] != token)),
        )
        remember(row)
    return out
