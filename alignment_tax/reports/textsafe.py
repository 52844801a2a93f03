"""Making any text safe to show: model outputs, inputs, references, folder names.

Escaping (HTML, Markdown) happens where the text is placed; this module first makes the text
*visible* and encodable: control characters become their Unicode control pictures (U+2400…),
so a stray ``\\x1b`` shows as ``␛`` instead of vanishing or breaking an SVG, and lone
surrogates (which JSON allows and UTF-8 does not) become U+FFFD.

Invisible *format* characters (Unicode category Cf) are shown as markers such as ``⟨U+202E⟩``
and never passed through, so they cannot act on the text around them: a right-to-left override
would make ``\\u202egnp.exe`` read ``exe.png``, and zero-width spaces, joiners and word joiners
would hide inside a word. The languages this toolkit scores (Tibetan, Chinese, English) need none
of them, so ZWJ and ZWNJ are marked too: an emoji sequence shows as 👩⟨U+200D⟩💻, which is the
honest view of what a model wrote. The only Cf characters kept are those that are visible signs
or layout controls of particular scripts (Arabic and Syriac number marks, Egyptian hieroglyph and
Duployan shorthand format controls): they cannot reorder or hide Latin, Tibetan or Chinese text.

>>> visible("a\\x04b\\x1b\\tc\\ud800")
'a␄b␛\\tc�'
>>> visible("\\u202egnp.exe")
'⟨U+202E⟩gnp.exe'
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\ud800-\udfff]")

# Every Cf character (Unicode 15.1) except the script ones named in the module docstring, plus the
# unassigned U+2065 inside the invisible-operator block. tests/test_report_long_text.py checks this
# class against unicodedata, so a new Python's Unicode update that adds one is noticed.
_FORMAT = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_FORMAT_SPLIT = re.compile(f"({_FORMAT.pattern})")


def _picture(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    return f"\\x{code:02x}"


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def format_marker(char: str) -> str:
    """What shows in place of an invisible format character: ``⟨U+202E⟩``."""
    return f"⟨U+{ord(char):04X}⟩"


def format_name(char: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``, for a tooltip."""
    return f"U+{ord(char):04X} {unicodedata.name(char, 'FORMAT CHARACTER')}"


def visible(value: object) -> str:
    """``value`` as text with control and format characters shown and lone surrogates replaced."""
    text = _CONTROL.sub(_picture, _text(value))
    return _FORMAT.sub(lambda match: format_marker(match.group()), text)


def visible_parts(value: object) -> list[tuple[str, bool]]:
    """``value`` made visible as (text, is_format_char) parts, so a renderer can style the markers.

    A format character's part holds the character itself; plain parts have control pictures.
    """
    text = _CONTROL.sub(_picture, _text(value))
    return [(part, index % 2 == 1) for index, part in enumerate(_FORMAT_SPLIT.split(text)) if part]


def cut_point(text: str, limit: int) -> int:
    """Where to cut ``text`` to at most ``limit`` characters without splitting a combining sequence.

    A Tibetan stack (consonant, subjoined consonants, vowel signs) is one visible unit: cutting
    inside it would show a stray mark. Falls back to ``limit`` if the whole prefix is marks.
    """
    if len(text) <= limit:
        return len(text)
    cut = limit
    while cut > 0 and unicodedata.category(text[cut])[0] == "M":
        cut -= 1
    return cut or limit


# Markdown is meant to be read as plain text too, so only what would act as markup is escaped, with a
# backslash (CommonMark escapes any ASCII punctuation that way): characters that open emphasis, code,
# links, math or strikethrough anywhere, ``|`` everywhere (every cell is in a table), ``_`` only at a
# word's edge (inside ``snake_case`` it cannot open emphasis; ``[^\W_]`` is what str.isalnum accepts),
# ``<`` only where it could open a tag, ``&`` only where it would start an entity, a backslash only
# before punctuation it would escape (or at the end), and a line-start marker (heading, quote, list)
# at the start of the text.
_MARKUP = re.compile(
    r"[`*\[\]|~$]"
    r"|(?<![^\W_])_|_(?![^\W_])"
    r"|<(?=[A-Za-z/!?])"
    r"|&(?=#?[A-Za-z0-9]+;)"
    r"|\\(?=[!-/:-@\[-`{-~]|\Z)"
    r"|^[#>+=-]"
)


def markdown_escape(text: str) -> str:
    """``text`` with only what Markdown would read as markup escaped by a backslash.

    >>> markdown_escape("snake_case *bold* a|b <b>x</b> AT&amp;T")
    'snake_case \\\\*bold\\\\* a\\\\|b \\\\<b>x\\\\</b> AT\\\\&amp;T'
    """
    return _MARKUP.sub(r"\\\g<0>", text)


def markdown_text(value: object, limit: int | None = None) -> str:
    """Literal text inside a Markdown table cell: markup characters escaped, lines as ``<br>``.

    Text over ``limit`` characters is cut, with a note of its full length.
    """
    text = _text(value)
    note = ""
    if limit is not None and len(text) > limit:
        note = f"… ({len(text):,} characters in all)"
        text = text[: cut_point(text, limit - 1)]
    escaped = markdown_escape(visible(text)) + note
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>").replace("\t", " ")
