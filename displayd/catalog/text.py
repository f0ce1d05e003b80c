"""What a slogan's text may be, and its one stored form.

    normalise_text("  Chiến thắng\u00a0 Điện Biên Phủ ")  ->  "Chiến thắng Điện Biên Phủ"  (NFC)

Rejected: empty, over 280 characters, control characters, zero-width and bidirectional
formatting characters (all of Unicode's "format" category), private-use, surrogate and
unassigned code points. White space of any kind (tabs, line breaks, no-break spaces) is
folded to one space rather than rejected: that is what pasting from a document produces.
"""

from __future__ import annotations

import re
import unicodedata

from displayd.errors import InvalidInput

MAX_LENGTH = 280
# Tab, CR and LF are white space a paste brings; other C0/C1 controls are refused below.
_WHITESPACE = re.compile(r"[ \t\r\n\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
_REFUSED_CATEGORIES = {"Cc": "a control character", "Cf": "a zero-width or bidirectional formatting character",
                       "Cs": "a surrogate", "Co": "a private-use character", "Cn": "an unassigned code point"}


def normalise_text(text: str, *, field: str = "text", max_length: int = MAX_LENGTH) -> str:
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip(" ")
    if not text:
        raise InvalidInput(f"{field} is empty")
    if len(text) > max_length:
        raise InvalidInput(f"{field} is {len(text)} characters; at most {max_length} are allowed")
    for position, char in enumerate(text):
        what = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if what is not None:
            raise InvalidInput(
                f"{field} contains {what} (U+{ord(char):04X}, {unicodedata.name(char, 'unnamed')}) "
                f"at position {position}"
            )
    return text
