"""CMRC 2018 EM, F1 and AVERAGE with the official scorer's exact semantics.

The official scorer (ymcui/cmrc2018, ``cmrc2018_evaluate.py`` v5) is what papers quote as
"CMRC Avg/F1". Its rules differ from SQuAD's, and the differences move scores by tens of points
on model-like answers, so every quirk is kept on purpose:

* strings are only ``str(x).lower().strip()``-ed: no width folding, no whitespace collapsing;
* a fixed punctuation set is removed character by character; the set lists the two-character
  string ``……``, which a character test can never match, so ``…`` is never removed;
* F1 tokens: each character in U+4E00–U+9FA5 is a token; every other run goes through NLTK's
  ``word_tokenize`` as NLTK 3.4.5 ran it, Punkt sentence split included (see ``cmrc_tokenize``);
  removed punctuation does not end a run (``ω-force`` → ``ωforce``);
* F1's overlap is the longest common *contiguous* run of tokens;
* a question with no prediction scores 0 and stays in the denominator.

The reference is the v5 script as it ran for the benchmark: Python 2.7, NLTK 3.4.5, Punkt
English; tests/reference/cmrc_official_check.py compares the two token by token and question by
question. Python 2's whitespace is matched: its Unicode 5.2 tables made U+180E a space, so
``strip()``, ``split()`` and Punkt's ``\\s`` treat it as one here too (``ab\\u180ecd`` is two
tokens). Python 2's ``lower()`` is not reproduced, and differs from Python 3's on: ``İ`` (→ ``i``,
not ``i̇``); a word-final ``Σ`` (→ ``σ``, not ``ς``); Cherokee capitals U+13A0–U+13F4 (kept:
their lower case arrived in Unicode 8.0); and the 319 cased letters added after Unicode 5.2
(kept), such as Georgian Mtavruli, Osage and Adlam. None occurs in the dev set's gold answers.
A non-string answer is scored as its ``str()``, as there (prediction files hold strings).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache

from alignment_tax.metrics.cmrc_tokenize import word_tokenize

# The official list, in its order. "……" stays in the list (it is in the original) although a
# per-character membership test can never match it.
OFFICIAL_PUNCTUATION = (
    "-",
    ":",
    "_",
    "*",
    "^",
    "/",
    "\\",
    "~",
    "`",
    "+",
    "=",
    "，",
    "。",
    "：",
    "？",
    "！",
    "“",
    "”",
    "；",
    "’",
    "《",
    "》",
    "……",
    "·",
    "、",
    "「",
    "」",
    "（",
    "）",
    "－",
    "～",
    "『",
    "』",
)
_PUNCTUATION = frozenset(OFFICIAL_PUNCTUATION)
# Only single characters can match the official per-character test ("……" never does).
_SINGLE_PUNCTUATION = "".join(mark for mark in OFFICIAL_PUNCTUATION if len(mark) == 1)
_DELETE_PUNCTUATION = str.maketrans("", "", _SINGLE_PUNCTUATION)
# The official test is re.search(r'[\u4e00-\u9fa5]', char): narrower than the CJK block, and
# the numbers papers quote depend on it. Splitting with a capture group keeps those
# characters (odd items) between the runs (even items) in one C-speed pass.
_CJK = "\u4e00-\u9fa5"
_SPLIT_CJK = re.compile(f"([{_CJK}])")
_SPLIT_CJK_OR_PUNCTUATION = re.compile(f"([{_CJK}{re.escape(_SINGLE_PUNCTUATION)}])")


# Python 2's strip() also removed U+180E (see cmrc_tokenize): Python 3's whitespace plus it.
_OUTER_PY2_WHITESPACE = re.compile(r"^[\s\u180e]+|[\s\u180e]+$")


def _prepare(text: object) -> str:
    return _OUTER_PY2_WHITESPACE.sub("", str(text).lower())


def segment_pieces(text: object, remove_punctuation: bool = True) -> Iterator[tuple[str, bool]]:
    """``(piece, is_run)`` in order: single Chinese or punctuation characters, and the runs in
    between that go to NLTK (``is_run``), exactly as the official scorer cuts the string.

    >>> list(segment_pieces("光荣和ω-force"))
    [('光', False), ('荣', False), ('和', False), ('ωforce', True)]
    >>> list(segment_pieces("a-b", remove_punctuation=False))
    [('a', True), ('-', False), ('b', True)]
    """
    text = _prepare(text)
    if remove_punctuation:
        # Removed punctuation does not end a run: "ω-force" is the run "ωforce".
        parts = _SPLIT_CJK.split(text.translate(_DELETE_PUNCTUATION))
    else:
        parts = _SPLIT_CJK_OR_PUNCTUATION.split(text)
    for index, part in enumerate(parts):
        if index % 2:
            yield part, False
        elif part:
            yield part, True


@lru_cache(maxsize=1 << 14)
def _segment(text: str, remove_punctuation: bool) -> tuple[str, ...]:
    # References are segmented once per question and often repeat (three annotators).
    tokens: list[str] = []
    for piece, is_run in segment_pieces(text, remove_punctuation):
        if is_run:
            tokens.extend(word_tokenize(piece))
        else:
            tokens.append(piece)
    return tuple(tokens)


def mixed_segmentation(text: object, remove_punctuation: bool = True) -> list[str]:
    """Split into the official scorer's F1 tokens.

    >>> mixed_segmentation("光荣和ω-force")
    ['光', '荣', '和', 'ωforce']
    >>> mixed_segmentation("北京.")
    ['北', '京', '.']
    """
    return list(_segment(str(text), remove_punctuation))


def strip_punctuation(text: object) -> str:
    """The string EM compares: lower-cased, stripped, official punctuation removed.

    >>> strip_punctuation(" 北京。 ")
    '北京'
    """
    return _prepare(text).translate(_DELETE_PUNCTUATION)


def longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common contiguous run of tokens (not a subsequence).

    >>> longest_common_run(list("甲乙丙丁"), list("丁丙乙甲"))
    1
    >>> longest_common_run(list("abcxabcd"), list("zabcdz"))
    4
    """
    # The usual dynamic programme, visiting only the cells where the tokens are equal and
    # indexing the shorter side: a long prediction against a short reference costs one pass.
    if len(a) < len(b):
        a, b = b, a
    positions: dict[str, list[int]] = {}
    for j, token in enumerate(b):
        positions.setdefault(token, []).append(j)
    best = 0
    previous: dict[int, int] = {}
    for token in a:
        current = {}
        for j in positions.get(token, ()):
            run = previous.get(j, 0) + 1
            current[j + 1] = run
            if run > best:
                best = run
        previous = current
    return best


def cmrc_f1(prediction: object, references: Iterable[object]) -> float:
    """Best F1 over the references, in [0, 1].

    >>> round(cmrc_f1("甲丙", ["甲乙丙丁"]), 3)
    0.333
    """
    prediction_tokens = mixed_segmentation(prediction)
    best = 0.0
    for reference in references:
        reference_tokens = mixed_segmentation(reference)
        match = longest_common_run(reference_tokens, prediction_tokens)
        if match == 0:
            continue
        precision = match / len(prediction_tokens)
        recall = match / len(reference_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def cmrc_em(prediction: object, references: Iterable[object]) -> float:
    """1.0 when the prediction equals any reference after punctuation removal, else 0.0.

    >>> cmrc_em("北京。", ["北京"]), cmrc_em("北京.", ["北京"])
    (1.0, 0.0)
    """
    candidate = strip_punctuation(prediction)
    return float(any(candidate == strip_punctuation(reference) for reference in references))


def iter_squad_questions(dataset: Mapping) -> Iterable[tuple[str, list[str]]]:
    """(question id, reference answers) for every question of a SQuAD-layout dataset."""
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield qa["id"].strip(), [answer["text"] for answer in qa["answers"]]


def score_predictions(dataset: Mapping, predictions: Mapping[str, object]) -> dict:
    """The official scorer's result for a SQuAD-layout dataset and ``{question_id: answer}``.

    Returns the official keys, with ``AVERAGE``, ``F1`` and ``EM`` as three-decimal strings on
    0–100, ``TOTAL`` questions and ``SKIP`` unanswered ones. Ids not in the dataset are ignored.
    """
    f1_sum = em_sum = 0.0
    total = skipped = 0
    for question_id, references in iter_squad_questions(dataset):
        total += 1
        if question_id not in predictions:
            skipped += 1
            continue
        prediction = str(predictions[question_id])
        f1_sum += cmrc_f1(prediction, references)
        em_sum += cmrc_em(prediction, references)
    f1 = 100.0 * f1_sum / total if total else 0.0
    em = 100.0 * em_sum / total if total else 0.0
    return {
        "AVERAGE": f"{(em + f1) * 0.5:.3f}",
        "F1": f"{f1:.3f}",
        "EM": f"{em:.3f}",
        "TOTAL": total,
        "SKIP": skipped,
    }
