"""Which script a language is written in, and whether an output stays in it.

The reference study's language-consistency check (its §3.4.2) is a rule over Unicode ranges:
an output is consistent when every letter in it belongs to the target language's script.
Digits, punctuation, symbols and spaces are allowed anywhere because every script mixes them
in; letters or combining marks from any other script make the output mixed.

That strict rule is the default. It also fails legitimate Latin inside Chinese ("GDP增长", "CPU"):
0.2–0.8% of gold Chinese references fail it. A :class:`Tolerance` relaxes it, the same way in
the metric and in the reward: Latin capitals in short runs (acronyms), and/or a maximum share of
letters from other scripts.
"""

from __future__ import annotations

import re
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
    "bo": TIBETAN,
    "bod": TIBETAN,
    "bod_tibt": TIBETAN,
    "dz": TIBETAN,
    "dzo": TIBETAN,
    "zh": HAN,
    "zho": HAN,
    "cmn": HAN,
    "zh-hans": HAN,
    "zh-hant": HAN,
    "zho_hans": HAN,
    "zho_hant": HAN,
    "cmn_hans": HAN,
    "cmn_hant": HAN,
    "ug": ARABIC,
    "uig": ARABIC,
    "uig_arab": ARABIC,
    "kk": ARABIC,
    "kk-arab": ARABIC,
    "kaz_arab": ARABIC,
    "mn": MONGOLIAN,
    "mon": MONGOLIAN,
    "mn-mong": MONGOLIAN,
    "mon_mong": MONGOLIAN,
    "khk_mong": MONGOLIAN,
    "en": LATIN,
    "eng": LATIN,
    "eng_latn": LATIN,
    "latn": LATIN,
    "latin": LATIN,
    "ru": CYRILLIC,
    "rus": CYRILLIC,
    "rus_cyrl": CYRILLIC,
    "mn-cyrl": CYRILLIC,
    "khk_cyrl": CYRILLIC,
    "kk-cyrl": CYRILLIC,
    "kaz_cyrl": CYRILLIC,
}


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


@dataclass(frozen=True)
class Tolerance:
    """Exceptions to the strict rule; both off by default (the paper's rule).

    ``acronyms``: runs of at most this many Latin capitals ("GDP", "WTO", "COVID") are free.
    ``other_share``: up to this share of the counted letters may belong to other scripts.
    """

    acronyms: int = 0
    other_share: float = 0.0

    @property
    def strict(self) -> bool:
        return self.acronyms == 0 and self.other_share == 0.0

    def __str__(self) -> str:
        return f"acronyms={self.acronyms},other_share={self.other_share:g}"


STRICT = Tolerance()
_LATIN_CAPITALS = re.compile(r"(?<![A-Za-z\u00C0-\u024F])[A-Z]+(?![A-Za-z\u00C0-\u024F])")


def parse_tolerance(value: str | dict | Tolerance | None) -> Tolerance:
    """``"acronyms=5,other_share=0.02"`` (or the same as a dict) as a :class:`Tolerance`; ``None`` or ``""``: strict.

    >>> parse_tolerance("acronyms=5")
    Tolerance(acronyms=5, other_share=0.0)
    """
    if isinstance(value, Tolerance):
        return value
    if value is None or value == "" or value == "strict":
        return STRICT
    if isinstance(value, str):
        pairs = {}
        for part in value.split(","):
            key, sep, number = part.partition("=")
            if not sep:
                raise UserError(f"language tolerance {value!r}: expected acronyms=N,other_share=X")
            pairs[key.strip()] = number.strip()
        value = pairs
    if not isinstance(value, dict) or set(value) - {"acronyms", "other_share"}:
        raise UserError(f"language tolerance {value!r}: the keys are acronyms (letters) and other_share (0-1)")
    try:
        acronyms, share = int(value.get("acronyms", 0)), float(value.get("other_share", 0.0))
    except (TypeError, ValueError):
        raise UserError(f"language tolerance {value!r}: acronyms is a whole number, other_share a number") from None
    if acronyms < 0 or not 0.0 <= share < 1.0:
        raise UserError(f"language tolerance {value!r}: acronyms >= 0 and 0 <= other_share < 1")
    return Tolerance(acronyms, share)


def canonical_tolerance(value: str | dict | Tolerance | None) -> str | None:
    """The one spelling of a tolerance (``"acronyms=5,other_share=0"``), or None for the strict rule."""
    tolerance = parse_tolerance(value)
    return None if tolerance.strict else str(tolerance)


def _is_letter_or_mark(char: str) -> bool:
    return unicodedata.category(char)[0] in "LM"


def is_script_consistent(text: str, language: str, tolerance: Tolerance = STRICT) -> float:
    """1.0 when ``text`` is written in ``language``'s script, else 0.0.

    Letters and combining marks must all belong to the script and at least one must be there;
    digits, punctuation, symbols and spaces are free. Empty, mixed or off-target text is 0,
    except for what a non-strict ``tolerance`` allows.

    >>> is_script_consistent("བཀྲ་ཤིས་བདེ་ལེགས། 2024", "bo")
    1.0
    >>> is_script_consistent("བཀྲ་ཤིས་ hello", "bo"), is_script_consistent("", "zh")
    (0.0, 0.0)
    >>> is_script_consistent("GDP增长了", "zh"), is_script_consistent("GDP增长了", "zh", Tolerance(acronyms=5))
    (0.0, 1.0)
    """
    script = script_for(language)
    if not tolerance.strict:
        return _tolerant(text, script, tolerance)
    seen_target = False
    for char in text:
        if script.contains(char):
            seen_target = seen_target or _is_letter_or_mark(char)
        elif _is_letter_or_mark(char):
            return 0.0
    return 1.0 if seen_target else 0.0


def _tolerant(text: str, script: Script, tolerance: Tolerance) -> float:
    if tolerance.acronyms and script is not LATIN:
        text = _LATIN_CAPITALS.sub(lambda m: " " if len(m.group()) <= tolerance.acronyms else m.group(), text)
    target = other = 0
    for char in text:
        if not _is_letter_or_mark(char):
            continue
        if script.contains(char):
            target += 1
        else:
            other += 1
    if target == 0:
        return 0.0
    return 1.0 if other <= tolerance.other_share * (target + other) else 0.0


def script_consistency(outputs: list[str], language: str, tolerance: Tolerance = STRICT) -> list[float]:
    """Per-output :func:`is_script_consistent` values (their mean is the task metric)."""
    script_for(language)  # fail on an unknown code even when there are no outputs
    return [is_script_consistent(output, language, tolerance) for output in outputs]
