"""Which script a language is written in, and whether an output stays in it.

The reference study's language-consistency check (its §3.4.2) is a rule over Unicode ranges:
an output is consistent when every letter in it belongs to the target language's script.
Digits, punctuation, symbols and spaces are allowed anywhere because every script mixes them
in; letters or combining marks from any other script make the output mixed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from alignment_tax.errors import UserError

Range = tuple[int, int]


@dataclass(frozen=True)
class Script:
    name: str
    ranges: tuple[Range, ...]

    def contains(self, char: str) -> bool:
        code = ord(char)
        return any(low <= code <= high for low, high in self.ranges)


TIBETAN = Script("Tibetan", ((0x0F00, 0x0FFF),))
HAN = Script(
    "Han",
    (
        (0x4E00, 0x9FFF),  # CJK Unified Ideographs
        (0x3400, 0x4DBF),  # Extension A
        (0x20000, 0x323AF),  # Extensions B–H
        (0xF900, 0xFAFF),  # Compatibility Ideographs
        (0x2F800, 0x2FA1F),  # Compatibility Supplement
        (0x3005, 0x3007),  # 々 〆 〇, written inside Chinese text
    ),
)
ARABIC = Script(
    "Arabic",
    ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
)
MONGOLIAN = Script("Mongolian", ((0x1800, 0x18AF), (0x11660, 0x1167F)))
LATIN = Script(
    "Latin",
    ((0x0041, 0x005A), (0x0061, 0x007A), (0x00C0, 0x024F), (0x1E00, 0x1EFF), (0x0300, 0x036F)),
)
CYRILLIC = Script("Cyrillic", ((0x0400, 0x052F),))

# Code → script. ISO 639-1 and 639-3 codes and FLORES-style names all resolve, so a user can
# pass what their dataset uses. Uyghur and Kazakh mean the Arabic-script orthographies used in
# China (the setting this tool is built for); Mongolian means the traditional script.
LANGUAGE_SCRIPTS: dict[str, Script] = {
    "bo": TIBETAN, "bod": TIBETAN, "bod_tibt": TIBETAN,
    "dz": TIBETAN, "dzo": TIBETAN,
    "zh": HAN, "zho": HAN, "cmn": HAN, "zh-hans": HAN, "zh-hant": HAN,
    "zho_hans": HAN, "zho_hant": HAN, "cmn_hans": HAN, "cmn_hant": HAN,
    "ug": ARABIC, "uig": ARABIC, "uig_arab": ARABIC,
    "kk": ARABIC, "kk-arab": ARABIC, "kaz_arab": ARABIC,
    "mn": MONGOLIAN, "mon": MONGOLIAN, "mn-mong": MONGOLIAN, "mon_mong": MONGOLIAN,
    "khk_mong": MONGOLIAN,
    "en": LATIN, "eng": LATIN, "eng_latn": LATIN, "latn": LATIN, "latin": LATIN,
    "ru": CYRILLIC, "rus": CYRILLIC, "rus_cyrl": CYRILLIC, "mn-cyrl": CYRILLIC,
    "khk_cyrl": CYRILLIC, "kk-cyrl": CYRILLIC, "kaz_cyrl": CYRILLIC,
}  # fmt: skip


def script_for(language: str) -> Script:
    """The script registered for a language code (case-insensitive).

    >>> script_for("bo").name, script_for("zho_Hans").name
    ('Tibetan', 'Han')
    """
    script = LANGUAGE_SCRIPTS.get(language.strip().lower())
    if script is None:
        known = ", ".join(sorted(code for code in LANGUAGE_SCRIPTS if "_" not in code and "-" not in code))
        raise UserError(f"unknown language code {language!r}; known codes include: {known}")
    return script


def _is_letter_or_mark(char: str) -> bool:
    return unicodedata.category(char)[0] in "LM"


def is_script_consistent(text: str, language: str) -> float:
    """1.0 when ``text`` is written in ``language``'s script, else 0.0.

    Letters and combining marks must all belong to the script and at least one must be there;
    digits, punctuation, symbols and spaces are free. Empty, mixed or off-target text is 0.

    >>> is_script_consistent("བཀྲ་ཤིས་བདེ་ལེགས། 2024", "bo")
    1.0
    >>> is_script_consistent("བཀྲ་ཤིས་ hello", "bo"), is_script_consistent("", "zh")
    (0.0, 0.0)
    """
    script = script_for(language)
    seen_target = False
    for char in text:
        if script.contains(char):
            seen_target = seen_target or _is_letter_or_mark(char)
        elif _is_letter_or_mark(char):
            return 0.0
    return 1.0 if seen_target else 0.0


def script_consistency(outputs: list[str], language: str) -> list[float]:
    """Per-output :func:`is_script_consistent` values (their mean is the task metric)."""
    script_for(language)  # fail on an unknown code even when there are no outputs
    return [is_script_consistent(output, language) for output in outputs]
