"""What a slogan's text may be, and its one stored form.

    normalise_text("  Chiến thắng\u00a0 Điện Biên Phủ ")  ->  "Chiến thắng Điện Biên Phủ"  (NFC)

Rejected: empty, over 280 characters, control characters, zero-width and bidirectional
formatting characters (all of Unicode's "format" category), private-use, surrogate and
unassigned code points, and every other character that renders as nothing: Unicode's
Default_Ignorable_Code_Point set (Hangul fillers, variation selectors, the combining grapheme
joiner, tag characters, ...) and the braille blank. Text made of them looks empty, or like
another approved text, on a board and in review alike. White space of any kind (tabs, line
breaks, no-break spaces, the ideographic space U+3000) is folded to one space rather than
rejected: it shows as a gap, and it is what pasting from a document produces.
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
# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties.txt) that the categories above
# miss (letters, marks), the whole set for clarity, and U+2800 BRAILLE PATTERN BLANK, which is
# a symbol that shows nothing.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")


def normalise_text(text: str, *, field: str = "text", max_length: int = MAX_LENGTH) -> str:
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip(" ")
    if not text:
        raise InvalidInput(f"{field} is empty")
    if len(text) > max_length:
        raise InvalidInput(f"{field} is {len(text)} characters; at most {max_length} are allowed")
    for position, char in enumerate(text):
        what = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if what is None and _INVISIBLE.match(char):
            what = "a character that renders as nothing"
        if what is not None:
            raise InvalidInput(
                f"{field} contains {what} (U+{ord(char):04X}, {unicodedata.name(char, 'unnamed')}) "
                f"at position {position}"
            )
    return text
