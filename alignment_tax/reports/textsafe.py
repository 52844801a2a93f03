"""Making any text safe to show: model outputs, inputs, references, folder names.

Escaping (HTML, Markdown) happens where the text is placed; this module first makes the text
*visible* and encodable: control characters become their Unicode control pictures (U+2400…),
so a stray ``\\x1b`` shows as ``␛`` instead of vanishing or breaking an SVG, and lone
surrogates (which JSON allows and UTF-8 does not) become U+FFFD.

>>> visible("a\\x04b\\x1b\\tc\\ud800")
'a␄b␛\\tc�'
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f\ud800-\udfff]")


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


def visible(value: object) -> str:
    """``value`` as text with control characters shown and lone surrogates replaced."""
    return _CONTROL.sub(_picture, value if isinstance(value, str) else str(value))


_MARKDOWN = {c: f"&#{ord(c)};" for c in "\\`*_{}[]<>#|~&!$"}


def markdown_text(value: object, limit: int | None = None) -> str:
    """Literal text inside a Markdown table cell: every markup character as an entity, lines as ``<br>``."""
    text = visible(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    escaped = "".join(_MARKDOWN.get(char, char) for char in text)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>").replace("\t", " ")
