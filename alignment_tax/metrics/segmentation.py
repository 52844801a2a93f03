"""Script-aware word segmentation for n-gram metrics.

Chinese has no spaces and Tibetan marks syllable boundaries with a tsheg (U+0F0B) rather than
a space, so whitespace tokenisers see one "word" per sentence and score near zero. Here a Han
character is a token, a Tibetan syllable (the run between tshegs, shads and spaces) is a token,
and any other run of letters or digits (Latin, Cyrillic, Arabic script, Mongolian...) is a word.
"""

from __future__ import annotations

import re

from alignment_tax.data.normalize import normalize_text

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U000323af"
# Tibetan letters, vowel signs, subjoined letters, digits and marks that live inside a syllable.
# U+0F00–U+0F03 and U+0F13–U+0F17 are symbols written as syllables (ༀ, signs); U+0F04–U+0F12
# (head marks, tsheg, shads) and U+0F3A–U+0F3D (brackets) separate syllables.
_TIBETAN_SYLLABLE_CHAR = r"\u0f00-\u0f03\u0f13\u0f15-\u0f39\u0f3e-\u0fff"

_TOKEN = re.compile(
    rf"(?P<han>[{_HAN}])"
    rf"|(?P<tibetan>[{_TIBETAN_SYLLABLE_CHAR}]+)"
    rf"|(?P<word>[^\W{_HAN}\u0f00-\u0fff]+)"
    # Any other visible mark is punctuation; the tsheg is excluded because it is a boundary.
    rf"|(?P<punct>[^\s\w\u0f0b\u0f0c])",
)


def segment(text: str, keep_punctuation: bool = False, lowercase: bool = True) -> list[str]:
    """Split ``text`` into Han characters, Tibetan syllables and words.

    ``keep_punctuation`` keeps each punctuation mark as its own token (BLEU counts them, as its
    ``zh`` tokenizer does); tshegs never become tokens, being boundaries rather than marks.

    >>> segment("北京大学 is big")
    ['北', '京', '大', '学', 'is', 'big']
    >>> segment("བཀྲ་ཤིས་བདེ་ལེགས།")
    ['བཀྲ', 'ཤིས', 'བདེ', 'ལེགས']
    >>> segment("བཀྲ་ཤིས།", keep_punctuation=True)
    ['བཀྲ', 'ཤིས', '།']
    """
    text = normalize_text(text)
    if lowercase:
        text = text.lower()
    tokens = []
    for match in _TOKEN.finditer(text):
        if match.lastgroup == "punct" and not keep_punctuation:
            continue
        tokens.append(match.group())
    return tokens


def segment_for_bleu(text: str) -> str:
    """Space-joined syllables and marks, for sacrebleu with ``tokenize="none"``.

    >>> segment_for_bleu("བཀྲ་ཤིས་བདེ་ལེགས།")
    'བཀྲ ཤིས བདེ ལེགས །'
    """
    return " ".join(segment(text, keep_punctuation=True, lowercase=False))


class ScriptAwareTokenizer:
    """A tokenizer object for ``rouge_score`` (which calls ``.tokenize``).

    rouge_score's default keeps only ``[a-z0-9]``, so Chinese and Tibetan score 0 even when
    identical. Text made only of punctuation falls back to its non-space characters, so that
    identical non-empty strings still score 1.0.
    """

    def tokenize(self, text: str) -> list[str]:
        tokens = segment(text)
        if not tokens:
            tokens = [char for char in normalize_text(text) if not char.isspace()]
        return tokens
