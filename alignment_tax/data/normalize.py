"""Text normalisation applied to every text the tool reads."""

import unicodedata

# U+0F0C (TIBETAN MARK DELIMITER TSHEG BSTAR, the non-breaking tsheg) is a presentation variant
# of U+0F0B; corpora mix the two, and a tokenizer, embedder or metric would treat them as
# different syllable boundaries.
_TIBETAN_TSHEG_FOLD = str.maketrans({"\u0f0c": "\u0f0b"})

# What normalize_text does, in order, as a metric signature's ``pre:`` element names it: a score
# computed on normalised text is reproduced by another tool only once it applies these steps too.
NORMALIZATION_STEPS = ("nfc", "tsheg-fold")


def normalize_text(text: str) -> str:
    """NFC-normalise ``text`` and fold the non-breaking Tibetan tsheg into the ordinary one.

    >>> normalize_text("ཀ\u0f0cཁ") == "ཀ\u0f0bཁ"
    True
    """
    return unicodedata.normalize("NFC", text).translate(_TIBETAN_TSHEG_FOLD)
