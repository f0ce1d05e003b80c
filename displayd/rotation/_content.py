"""Content: what a board is given for a slogan, and the hashes that name it.

This module owns paging (splitting text into screens of ``lines`` lines of ``max_chars``),
folding Vietnamese to plain ASCII for boards that cannot draw diacritics, and the canonical
JSON a content hash is taken over, so a board's reported hash can be checked.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Any

__all__ = [
    "CHARSETS",
    "content_hash",
    "fold_ascii",
    "page_text",
    "render_content",
    "text_hash",
]

CHARSETS = ("utf-8", "ascii")

# Characters with no diacritic to strip that still have an obvious ASCII reading. U+00D0
# (Icelandic eth) is included because it is often typed for Đ.
_ASCII_FOR = str.maketrans(
    {
        "đ": "d",
        "Đ": "D",
        "Ð": "D",
        "–": "-",
        "—": "-",
        "‒": "-",
        "―": "-",
        "−": "-",
        "‐": "-",
        "‑": "-",
        "“": '"',
        "”": '"',
        "„": '"',
        "«": '"',
        "»": '"',
        "‘": "'",
        "’": "'",
        "‚": "'",
        "…": "...",
        "\u00a0": " ",
        "\u202f": " ",
        "\u2007": " ",
    }
)


def page_text(text: str, max_chars: int, lines: int) -> list[list[str]]:
    """``page_text("Chín năm làm một Điện Biên", 10, 2)`` ->
    ``[["Chín năm", "làm một"], ["Điện Biên"]]``.

    Words (separated by white space) are packed greedily into lines of at most
    ``max_chars`` characters; a word longer than a line is cut into line-sized pieces.
    Lines are grouped ``lines`` to a page. Always at least one page (``[[""]]`` for "").
    """
    if max_chars < 1 or lines < 1:
        raise ValueError("max_chars and lines must be at least 1")
    out_lines: list[str] = []
    current = ""
    for word in text.split():
        if not current:
            candidate = word
        else:
            candidate = f"{current} {word}"
        if len(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            out_lines.append(current)
        while len(word) > max_chars:
            out_lines.append(word[:max_chars])
            word = word[max_chars:]
        current = word
    if current or not out_lines:
        out_lines.append(current)
    return [out_lines[i : i + lines] for i in range(0, len(out_lines), lines)]


def fold_ascii(text: str) -> str:
    """``fold_ascii("Chiến thắng Điện Biên Phủ")`` -> ``"Chien thang Dien Bien Phu"``.

    Diacritics are dropped (NFD, then combining marks removed), đ/Đ become d/D, common
    typographic punctuation gets its ASCII form, and anything still not ASCII becomes "?".
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_ASCII_FOR))
    kept = (ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch if ch.isascii() else "?" for ch in kept)


def render_content(slogan_id: int, text: str, *, charset: str, max_chars: int, lines: int) -> dict[str, Any]:
    """The ``content`` object of a push or poll:
    ``{"slogan_id": 7, "text": "…", "pages": [["…"]], "charset": "utf-8"}``."""
    if charset not in CHARSETS:
        raise ValueError(f"charset must be one of {', '.join(CHARSETS)}, got {charset!r}")
    shown = fold_ascii(text) if charset == "ascii" else text
    return {
        "slogan_id": slogan_id,
        "text": shown,
        "pages": page_text(shown, max_chars, lines),
        "charset": charset,
    }


def content_hash(content: dict[str, Any]) -> str:
    """``"sha256:<hex>"`` of the canonical JSON (sorted keys, no spaces, UTF-8) of a content."""
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def text_hash(text: str) -> str:
    """``"sha256:<hex>"`` of the text's UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
