from __future__ import annotations

import pytest

from displayd.rotation import content_hash, fold_ascii, page_text, render_content, text_hash

from .builders import SLOGANS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SLOGANS[0], "Nhiet liet chao mung 70 nam Chien thang Dien Bien Phu (07/5/1954 - 07/5/2024)!"),
        (SLOGANS[1], "Chien thang Dien Bien Phu - Lung lay nam chau, chan dong dia cau!"),
        (SLOGANS[2], "Chin nam lam mot Dien Bien - Nen vanh hoa do, nen thien su vang!"),
        ("Chiến thắng Điện Biên Phủ", "Chien thang Dien Bien Phu"),
        ("ĐƯỜNG đi Ơ ư", "DUONG di O u"),
        ("1954 – 2024 — “Điện Biên” ‘x’ …", "1954 - 2024 - \"Dien Bien\" 'x' ..."),
        ("a\u00a0b", "a b"),
        ("北京 ☭", "?? ?"),
        ("", ""),
    ],
)
def test_fold_ascii(text: str, expected: str) -> None:
    assert fold_ascii(text) == expected
    assert fold_ascii(text).isascii()


def test_fold_ascii_handles_decomposed_input() -> None:
    import unicodedata

    assert fold_ascii(unicodedata.normalize("NFD", SLOGANS[1])) == fold_ascii(SLOGANS[1])


@pytest.mark.parametrize(
    ("text", "max_chars", "lines", "expected"),
    [
        ("Chín năm làm một Điện Biên", 10, 2, [["Chín năm", "làm một"], ["Điện Biên"]]),
        ("Chín năm làm một Điện Biên", 100, 2, [["Chín năm làm một Điện Biên"]]),
        ("", 10, 2, [[""]]),
        ("abcdefghij", 4, 2, [["abcd", "efgh"], ["ij"]]),
        ("ab cdefghij k", 4, 3, [["ab", "cdef", "ghij"], ["k"]]),
        ("ab cd", 5, 1, [["ab cd"]]),
        ("ab cd", 4, 1, [["ab"], ["cd"]]),
        (
            SLOGANS[0],
            40,
            2,
            [
                ["Nhiệt liệt chào mừng 70 năm Chiến thắng", "Điện Biên Phủ (07/5/1954 - 07/5/2024)!"],
            ],
        ),
        (
            SLOGANS[1],
            20,
            2,
            [["Chiến thắng Điện", "Biên Phủ - Lừng lẫy"], ["năm châu, chấn động", "địa cầu!"]],
        ),
        (
            SLOGANS[2],
            16,
            3,
            [["Chín năm làm một", "Điện Biên - Nên", "vành hoa đỏ, nên"], ["thiên sử vàng!"]],
        ),
    ],
)
def test_page_text(text: str, max_chars: int, lines: int, expected: list[list[str]]) -> None:
    assert page_text(text, max_chars, lines) == expected


@pytest.mark.parametrize(("max_chars", "lines"), [(0, 1), (1, 0), (-1, 2)])
def test_page_text_rejects_empty_screens(max_chars: int, lines: int) -> None:
    with pytest.raises(ValueError):
        page_text("x", max_chars, lines)


def test_render_content_utf8_and_ascii() -> None:
    utf8 = render_content(7, SLOGANS[1], charset="utf-8", max_chars=40, lines=2)
    assert utf8 == {
        "slogan_id": 7,
        "text": SLOGANS[1],
        "pages": [["Chiến thắng Điện Biên Phủ - Lừng lẫy năm", "châu, chấn động địa cầu!"]],
        "charset": "utf-8",
    }
    ascii_ = render_content(7, SLOGANS[1], charset="ascii", max_chars=40, lines=2)
    assert ascii_["text"] == "Chien thang Dien Bien Phu - Lung lay nam chau, chan dong dia cau!"
    assert ascii_["pages"] == [["Chien thang Dien Bien Phu - Lung lay nam", "chau, chan dong dia cau!"]]
    assert content_hash(utf8) != content_hash(ascii_)
    with pytest.raises(ValueError):
        render_content(7, "x", charset="latin-1", max_chars=40, lines=2)


def test_hashes_are_canonical() -> None:
    import hashlib

    content = {"text": "Điện Biên", "slogan_id": 1, "pages": [["Điện Biên"]], "charset": "utf-8"}
    reordered = dict(reversed(list(content.items())))
    expected_json = '{"charset":"utf-8","pages":[["Điện Biên"]],"slogan_id":1,"text":"Điện Biên"}'
    expected = "sha256:" + hashlib.sha256(expected_json.encode()).hexdigest()
    assert content_hash(content) == content_hash(reordered) == expected
    assert text_hash("Điện Biên") == "sha256:" + hashlib.sha256("Điện Biên".encode()).hexdigest()
