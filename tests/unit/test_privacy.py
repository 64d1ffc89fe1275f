"""Field encryption and blind indexes."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from iasu.privacy import BlindIndex, FieldCipher

KEY = b"k" * 32


def test_a_field_round_trips_and_the_ciphertext_hides_it() -> None:
    cipher = FieldCipher(KEY)
    blob = cipher.encrypt("people", "surname_enc", "Zoë O'Brien")
    assert blob is not None and b"Brien" not in blob
    assert cipher.decrypt("people", "surname_enc", blob) == "Zoë O'Brien"


def test_equal_values_encrypt_differently() -> None:
    cipher = FieldCipher(KEY)
    assert cipher.encrypt("people", "surname_enc", "Lee") != cipher.encrypt("people", "surname_enc", "Lee")


def test_a_ciphertext_moved_to_another_column_does_not_decrypt() -> None:
    cipher = FieldCipher(KEY)
    blob = cipher.encrypt("people", "surname_enc", "Lee")
    with pytest.raises(InvalidTag):
        cipher.decrypt("people", "forename_enc", blob)


def test_none_stays_none() -> None:
    cipher = FieldCipher(KEY)
    assert cipher.encrypt("people", "phone_enc", None) is None
    assert cipher.decrypt("people", "phone_enc", None) is None


def test_blind_index_is_keyed_and_separated_by_purpose() -> None:
    one, other = BlindIndex(KEY), BlindIndex(b"x" * 32)
    assert one("name_dob", "ann lee|1990-01-02") == one("name_dob", "ann lee|1990-01-02")
    assert one("name_dob", "ann lee|1990-01-02") != other("name_dob", "ann lee|1990-01-02")
    assert one("name_dob", "26123456A") != one("pnc", "26123456A")
    assert one("pnc", None) is None
