"""Fake people for synthetic referrals: names, dates of birth, contact details, addresses."""

from __future__ import annotations

import random
import string
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from faker import Faker

# Hand-picked names that break naive parsers: apostrophes, hyphens, spaces,
# accents. These can all be written in Windows-1252, so the police export can carry them.
CP1252_FORENAMES: tuple[str, ...] = (
    "Zoë",
    "José",
    "Siobhán",
    "Seán",
    "Aoife",
    "Chloé",
    "Noël",
    "Renée",
    "Björn",
    "Øystein",
    "Mary-Jane",
    "Ana María",
    "Dáithí",
    "François",
    "Jürgen",
)
CP1252_SURNAMES: tuple[str, ...] = (
    "O'Brien",
    "Smith-Jones",
    "Ó Súilleabháin",
    "D'Arcy",
    "McAllister-Brown",
    "Núñez",
    "Müller",
    "García",
    "Ní Bhriain",
    "van der Berg",
    "Wójcik",
)
# Names that only Unicode can carry; the police system cannot hold them.
UNICODE_FORENAMES: tuple[str, ...] = ("Łukasz", "Małgorzata", "Jiří", "Thảo", "Oğuz", "Władysław")
UNICODE_SURNAMES: tuple[str, ...] = ("Nguyễn", "Dvořák", "Şahin", "Wiśniewski", "Trần", "Đặng")

HAND_NAME_RATE = 0.2
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net", "mail.example.co.uk")


@dataclass(frozen=True)
class Person:
    """One fake person; the same object reused is the same person in every feed."""

    forename: str
    surname: str
    dob: date
    phone: str | None
    email: str | None
    address: tuple[str, ...]  # address lines, town last; empty when not known
    postcode: str | None
    pnc_id: str | None  # police national computer id, perpetrators only

    @property
    def cp1252_safe(self) -> bool:
        """Whether the police export (Windows-1252) can carry this person's details."""
        try:
            "".join((self.forename, self.surname, *self.address)).encode("cp1252")
        except UnicodeEncodeError:
            return False
        return True


# Letters that Unicode does not decompose into a base letter and an accent.
_FOLD = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "ı": "i"})


def ascii_fold(name: str) -> str:
    """Lower-case ASCII letters of a name, for e-mail local parts."""
    decomposed = unicodedata.normalize("NFKD", name.lower().translate(_FOLD))
    return "".join(char for char in decomposed.lower() if char in string.ascii_lowercase)


class PersonFactory:
    """Draws people from one seeded random stream and one seeded Faker."""

    def __init__(self, rng: random.Random, fake: Faker) -> None:
        self.rng = rng
        self.fake = fake

    def _name(self, cp1252_only: bool) -> tuple[str, str]:
        rng = self.rng
        forename = str(self.fake.first_name())
        surname = str(self.fake.last_name())
        if rng.random() < HAND_NAME_RATE:
            forenames = CP1252_FORENAMES if cp1252_only else CP1252_FORENAMES + UNICODE_FORENAMES
            forename = rng.choice(forenames)
        if rng.random() < HAND_NAME_RATE:
            surnames = CP1252_SURNAMES if cp1252_only else CP1252_SURNAMES + UNICODE_SURNAMES
            surname = rng.choice(surnames)
        return forename, surname

    def _pnc_id(self) -> str:
        rng = self.rng
        year = rng.choice((*range(95, 100), *range(27)))
        return f"{year:02d}/{rng.randint(1, 999_999):06d}{rng.choice(string.ascii_uppercase)}"

    def person(self, *, on: date, ages: tuple[int, int], cp1252_only: bool, perpetrator: bool) -> Person:
        """A new person aged within `ages` on the given day."""
        rng = self.rng
        fake = self.fake
        forename, surname = self._name(cp1252_only)
        dob = on - timedelta(days=rng.randint(ages[0] * 365 + 1, ages[1] * 365))
        phone_rate, email_rate, address_rate = (0.6, 0.5, 0.85) if perpetrator else (0.95, 0.8, 0.97)
        phone = str(fake.cellphone_number() if rng.random() < 0.7 else fake.phone_number())
        domain = rng.choice(EMAIL_DOMAINS)
        email = f"{ascii_fold(forename) or 'x'}.{ascii_fold(surname) or 'x'}{rng.randint(1, 99)}@{domain}"
        lines = (*str(fake.street_address()).split("\n"), str(fake.city()))
        postcode = str(fake.postcode())
        has_address = rng.random() < address_rate
        return Person(
            forename=forename,
            surname=surname,
            dob=dob,
            phone=phone if rng.random() < phone_rate else None,
            email=email if rng.random() < email_rate else None,
            address=lines if has_address else (),
            postcode=postcode if has_address else None,
            pnc_id=self._pnc_id() if perpetrator and rng.random() < 0.55 else None,
        )
