"""CMRC 2018 EM, F1 and AVERAGE with the official scorer's exact semantics.

The official scorer (ymcui/cmrc2018, ``cmrc2018_evaluate.py`` v5) is what papers quote as
"CMRC Avg/F1". Its rules differ from SQuAD's, and the differences move scores by tens of points
on model-like answers, so every quirk is kept on purpose:

* strings are only ``str(x).lower().strip()``-ed: no width folding, no whitespace collapsing;
* a fixed punctuation set is removed character by character; the set lists the two-character
  string ``……``, which a character test can never match, so ``…`` is never removed;
* F1 tokens: each character in U+4E00–U+9FA5 is a token; every other run goes through NLTK's
  word tokenizer; removed punctuation does not end a run (``ω-force`` → ``ωforce``);
* F1's overlap is the longest common *contiguous* run of tokens;
* a question with no prediction scores 0 and stays in the denominator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from nltk.tokenize import word_tokenize

# The official list, in its order. "……" stays in the list (it is in the original) although a
# per-character membership test can never match it.
OFFICIAL_PUNCTUATION = (
    "-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=",
    "，", "。", "：", "？", "！", "“", "”", "；", "’", "《", "》", "……", "·", "、",
    "「", "」", "（", "）", "－", "～", "『", "』",
)  # fmt: skip
_PUNCTUATION = frozenset(OFFICIAL_PUNCTUATION)


def _is_cjk(char: str) -> bool:
    # The official regex is [\u4e00-\u9fa5]: narrower than the CJK block on purpose-or-not,
    # and the numbers papers quote depend on it.
    return "\u4e00" <= char <= "\u9fa5"


def _prepare(text: object) -> str:
    return str(text).lower().strip()


def _tokenize_run(run: str) -> list[str]:
    # preserve_line=True skips Punkt sentence splitting, which needs downloaded data; on the
    # dev set it gives the official tokens for every answer (see docs/metrics-cmrc2018.md).
    return word_tokenize(run, preserve_line=True)


def mixed_segmentation(text: object, remove_punctuation: bool = True) -> list[str]:
    """Split into the official scorer's F1 tokens.

    >>> mixed_segmentation("光荣和ω-force")
    ['光', '荣', '和', 'ωforce']
    >>> mixed_segmentation("北京.")
    ['北', '京', '.']
    """
    tokens: list[str] = []
    run = ""
    for char in _prepare(text):
        if remove_punctuation and char in _PUNCTUATION:
            continue
        if _is_cjk(char) or char in _PUNCTUATION:
            if run:
                tokens.extend(_tokenize_run(run))
                run = ""
            tokens.append(char)
        else:
            run += char
    if run:
        tokens.extend(_tokenize_run(run))
    return tokens


def strip_punctuation(text: object) -> str:
    """The string EM compares: lower-cased, stripped, official punctuation removed.

    >>> strip_punctuation(" 北京。 ")
    '北京'
    """
    return "".join(char for char in _prepare(text) if char not in _PUNCTUATION)


def longest_common_run(a: list[str], b: list[str]) -> int:
    """Length of the longest common contiguous run of tokens (not a subsequence).

    >>> longest_common_run(list("甲乙丙丁"), list("丁丙乙甲"))
    1
    """
    best = 0
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0] * (len(b) + 1)
        for j, token_b in enumerate(b):
            if token_a == token_b:
                run = previous[j] + 1
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
        "AVERAGE": "%.3f" % ((em + f1) * 0.5),
        "F1": "%.3f" % f1,
        "EM": "%.3f" % em,
        "TOTAL": total,
        "SKIP": skipped,
    }
