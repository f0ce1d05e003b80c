import unicodedata

import pytest

from displayd.catalog.text import normalise_text
from displayd.errors import InvalidInput

NFC = "Chiến thắng Điện Biên Phủ"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (NFC, NFC),
        (unicodedata.normalize("NFD", NFC), NFC),
        ("  Chiến   thắng \t Điện\nBiên\r\nPhủ  ", NFC),
        ("Chiến\u00a0thắng\u3000Điện Biên Phủ", NFC),
        ("x" * 280, "x" * 280),
    ],
)
def test_stored_form(raw: str, stored: str) -> None:
    assert normalise_text(raw) == stored


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   \t\n ", "empty"),
        ("x" * 281, "281 characters"),
        ("Điện Biên\x00", "control"),
        ("Điện Biên\x1b[31m", "control"),
        ("Điện\x7fBiên", "control"),
        ("Điện\x85Biên", "control"),
        ("Điện\x1fBiên", "control"),
        ("Điện Biên\x1f", "control"),
        ("Điện\u200bBiên", "zero-width"),
        ("Điện\u200dBiên", "zero-width"),
        ("\ufeffĐiện Biên", "zero-width"),
        ("Điện\u202eBiên", "bidirectional"),
        ("Điện\u2066Biên\u2069", "bidirectional"),
        ("Điện\ue000Biên", "private-use"),
    ],
)
def test_refused(raw: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        normalise_text(raw)


def test_length_counts_after_folding() -> None:
    # 280 characters once the white space is folded: accepted.
    assert len(normalise_text("a" * 139 + "     " + "b" * 140)) == 280
