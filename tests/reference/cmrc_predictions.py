"""Deterministic prediction files over the CMRC 2018 dev set, for checking the scorer against the official one.

Each file stresses what the official scorer's tokenisation (NLTK 3.4.5 ``word_tokenize``: Punkt, then the
Treebank rules) decides: several Latin sentences, dashes and mixed scripts, long answers, full-width forms,
emoji, punctuation-only strings, abbreviations, quotes and contractions, random passage slices, U+180E
(whitespace to Python 2's Unicode 5.2, not to Python 3) in every position. Every file
also leaves some questions unanswered and adds ids that are not in the dataset.

``prediction_files(dataset)`` rebuilds the same files from the same seed on any Python 3, so CI can score
them against the official numbers stored in ``tests/data/cmrc_official_scores.json`` (written by
``cmrc_official_check.py``, which runs the official scorer).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

SEED = 2018

# Latin material comes from the passages themselves, so the sentences look like the data.
_LATIN_SPAN = re.compile(r"[A-Za-z][A-Za-z0-9 .,'’&()\-]*[A-Za-z0-9.)]")
_DASHES = ("\u2012", "\u2013", "\u2014", "\u2015", "——", "—", "--", "-", "－", "─", "~")
_QUOTES = ('"', "'", "“", "”", "‘", "’", "``", "''", "«", "»", "„", "″", "′")
_EMOJI = ("😀", "👍", "❤️", "🇨🇳", "👨\u200d👩\u200d👧", "🙂🙂", "✅", "🐼")
_PUNCT_ONLY = (
    "",
    " ",
    "\u3000",
    "。",
    "，",
    ".",
    "..",
    "...",
    "....",
    "?!",
    "!",
    "——",
    "—",
    "--",
    "“”",
    '""',
    "''",
    "``",
    "……",
    "…",
    "()",
    "（）",
    "《》",
    "、",
    "·",
    "-",
    ":",
    ";",
    "'",
    '"',
    "’",
    "【】",
    ". .",
    "!!!",
    "?",
    "%",
    "$",
    "&",
    "#",
    "@",
    ",",
    ", ,",
    "――",
    "‒",
    "–",
)
_ABBREVIATIONS = (
    "Mr.",
    "Mrs.",
    "Dr.",
    "U.S.",
    "U.K.",
    "e.g.",
    "i.e.",
    "No.",
    "St.",
    "a.m.",
    "p.m.",
    "Jan.",
    "Corp.",
    "vs.",
    "etc.",
    "Ph.D.",
)
_CONTRACTIONS = (
    "can't",
    "cannot",
    "gonna",
    "wanna ",
    "'tis",
    "'twas",
    "mor'n",
    "d'ye",
    "it's",
    "they'll",
    "don't",
    "rock 'n roll",
    "''x",
    "x''",
    "I'm",
    "we've",
    "gimme",
    "lemme",
    "gotta",
    "o'neill",
)
_END_RUNS = (".!", "!.", ".?!", "?.", ".).", "!!!", "!!!?", ".(3).", "?!?", "..!", '."', "!)", ".'", "")
_SCRIPTS = ("ポケモン", "ω", "αβγ", "Москва", "서울", "नमस्ते", "ئەينۇ", "ไทย", "Ⅱ", "℃", "㎞", "ß", "é", "İstanbul", "ǅ")
_SENT_WORDS = ("The", "It", "He", "This", "There", "However", "In", "But", "When", "Some", "they", "the", "a")


@dataclass(frozen=True)
class Question:
    qid: str
    context: str
    answers: tuple[str, ...]
    start: int  # answer_start of the first answer, -1 when absent


def dev_questions(dataset: dict) -> list[Question]:
    """Questions in dataset order (the order fixes what the seeded choices fall on)."""
    questions = []
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = tuple(answer["text"] for answer in qa["answers"])
                start = qa["answers"][0].get("answer_start", -1) if qa["answers"] else -1
                questions.append(Question(qa["id"], paragraph["context"], answers, int(start)))
    return questions


def latin_spans(questions: list[Question]) -> list[str]:
    """Latin stretches of the passages, first occurrence order, without duplicates."""
    seen: dict[str, None] = {}
    for question in questions:
        for span in _LATIN_SPAN.findall(question.context):
            if len(span) >= 2:
                seen.setdefault(span.strip(), None)
    return list(seen)


def full_width(text: str) -> str:
    """ASCII ``!``–``~`` to their full-width forms, the space to U+3000."""
    return "".join(
        chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else "\u3000" if char == " " else char for char in text
    )


class _Maker:
    """The per-question choices; one instance per file, seeded by the file's name."""

    def __init__(self, name: str, spans: list[str], contexts: list[str]):
        self.rng = random.Random(f"{SEED}:{name}")
        self.spans = spans
        self.contexts = contexts
        self.words = [word for span in spans[:4000] for word in span.split() if word.isascii()]

    def pick(self, options):
        return options[self.rng.randrange(len(options))]

    def word(self) -> str:
        return self.pick(self.words)

    def span(self) -> str:
        return self.pick(self.spans)

    def cut(self, text: str) -> int:
        return self.rng.randint(0, len(text))

    def sentence(self) -> str:
        words = [self.word() for _ in range(self.rng.randint(1, 6))]
        return " ".join([self.pick(_SENT_WORDS)] + words) + self.pick((".", ".", ".", "?", "!", "", "..."))


def _latin_sentences(q: Question, m: _Maker) -> str:
    answer = m.pick(q.answers)
    forms = (
        lambda: f"It is {answer}. The capital.",
        lambda: f"{m.word()}. The {m.word()}",
        lambda: f"{answer}. {m.sentence()} {m.sentence()}",
        lambda: f"{m.span()}. {m.span()}. {answer}",
        lambda: f"The answer is {answer}. It was {m.span()}. This is {m.word()}.",
        lambda: " ".join(m.sentence() for _ in range(m.rng.randint(2, 6))),
        lambda: f"{m.sentence()} {answer} {m.sentence()}",
        lambda: f"{answer}.{m.word()}. {m.word()}.",
        lambda: f"{m.word().lower()}. {m.word().lower()}. {m.pick(_SENT_WORDS)} {answer}.",
        lambda: m.pick(("\n", "\n\n", "\t", " \r\n")).join((answer, m.sentence(), m.sentence())),
    )
    return m.pick(forms)()


def _dashes_mixed_script(q: Question, m: _Maker) -> str:
    answer = m.pick(q.answers)
    at = m.cut(answer)
    digits = str(m.rng.randint(0, 3000))
    forms = (
        lambda: answer[:at] + m.pick(_DASHES) + answer[at:],
        lambda: f"{answer}{m.pick(_DASHES)}{m.word()}",
        lambda: f"40″—40{m.pick(('', answer))}",
        lambda: f"{digits}″{m.pick(_DASHES)}{digits}",
        lambda: f"{m.pick(_QUOTES)}{digits}{m.pick(_QUOTES)}{answer}",
        lambda: f"{answer[:at]}{m.pick(_SCRIPTS)}{answer[at:]}",
        lambda: f"{m.pick(_SCRIPTS)} {m.word()}{m.pick(_DASHES)}{answer}",
        lambda: f"{m.pick(_QUOTES)}{answer}{m.pick(_QUOTES)}",
        lambda: f"{m.word()}{m.pick(_DASHES)}{m.pick(_DASHES)}{digits}",
        lambda: f"{answer[:at]} {m.pick(_QUOTES)}{m.word()} {answer[at:]}",
    )
    return m.pick(forms)()


def _long_answers(q: Question, m: _Maker) -> str:
    answer = q.answers[0] if q.answers else ""
    start = q.start if 0 <= q.start <= len(q.context) else max(q.context.find(answer), 0)
    roll = m.rng.random()
    if roll < 0.05:
        # Several thousand characters: a model that does not stop.
        return "\n".join(m.pick(m.contexts) for _ in range(m.rng.randint(3, 8)))
    if roll < 0.15:
        return q.context
    if roll < 0.25:
        return " ".join(m.span() for _ in range(m.rng.randint(3, 12)))
    if roll < 0.35:
        return ". ".join(m.span() for _ in range(m.rng.randint(2, 10))) + "."
    before, after = m.rng.randint(0, 300), m.rng.randint(0, 300)
    return q.context[max(0, start - before) : start + len(answer) + after]


def _fullwidth_emoji_punct(q: Question, m: _Maker) -> str:
    answer = m.pick(q.answers)
    at = m.cut(answer)
    forms = (
        lambda: full_width(answer),
        lambda: full_width(m.sentence()) + answer,
        lambda: answer[:at] + m.pick(_EMOJI) + answer[at:],
        lambda: f"{m.pick(_EMOJI)} {answer} {m.pick(_EMOJI)}",
        lambda: m.pick(_PUNCT_ONLY),
        lambda: m.pick(_PUNCT_ONLY) + m.pick(_PUNCT_ONLY),
        lambda: full_width(f"{m.word()}, {m.rng.randint(0, 99)}") + "," + full_width(str(m.rng.randint(0, 99))),
        lambda: f"{m.word()},{full_width(str(m.rng.randint(0, 9)))}",
        lambda: answer.replace(" ", "\u3000") + m.pick(("", "\u00a0", "\u3000", "\u2003")) + m.word() + ".",
        lambda: f"{answer}{m.pick(_PUNCT_ONLY)}",
    )
    return m.pick(forms)()


def _abbreviations_quotes(q: Question, m: _Maker) -> str:
    answer = m.pick(q.answers)
    forms = (
        lambda: f"{m.pick(_ABBREVIATIONS)} {m.word()} {answer}",
        lambda: f"{answer} {m.pick(_ABBREVIATIONS)} {m.pick(_SENT_WORDS)} {m.word()}.",
        lambda: f"{m.pick(_CONTRACTIONS)} {answer}",
        lambda: f"{answer} {m.pick(_CONTRACTIONS)}",
        lambda: f"{m.word()}{m.pick(('..', '...', '....', '.....', '. . .'))}{m.pick(('', ' ', ' the '))}{answer}",
        lambda: f"{m.pick(_QUOTES)}{m.word()}{m.pick(_QUOTES)} {m.pick(_ABBREVIATIONS)} {answer}",
        lambda: f"{answer} ({m.word()}.) {m.word()}",
        lambda: f"{m.word()}'s {answer}'s {m.word()}s' {m.word()}",
        lambda: f"{m.pick(_ABBREVIATIONS)} {m.pick(_ABBREVIATIONS)} {m.word()}. {m.pick(_SENT_WORDS)} {answer}",
        lambda: f'"{m.word()}." {answer}',
        # Runs of end characters: NLTK 3.6.6 changed which of them Punkt considers.
        lambda: f"{m.word()}{m.pick(_END_RUNS)}{m.pick(('', ' ', ' the ', ' The '))}{answer}{m.pick(_END_RUNS)}",
    )
    return m.pick(forms)()


def _random_slices(q: Question, m: _Maker) -> str:
    length = m.pick((1, 2, 3, 5, 8, 13, 21, 40, 80))
    start = m.rng.randint(0, max(0, len(q.context) - length))
    return q.context[start : start + length]


_MVS = "\u180e"  # MONGOLIAN VOWEL SEPARATOR: whitespace to Python 2 (Unicode 5.2), not to Python 3


def _mongolian_vowel_separator(q: Question, m: _Maker) -> str:
    answer = m.pick(q.answers)
    at = m.cut(answer)
    word = m.word()
    digits = str(m.rng.randint(0, 3000))
    cut = m.rng.randint(1, max(1, len(word) - 1))
    forms = (
        lambda: answer[:at] + _MVS + answer[at:],
        lambda: _MVS + answer,
        lambda: answer + _MVS,
        lambda: f"{_MVS}{answer}{_MVS}",
        lambda: word[:cut] + _MVS + word[cut:],
        lambda: f"{word}{_MVS}{answer}",
        lambda: f"{answer}{_MVS}{word}",
        lambda: f"{digits}{_MVS}{answer}",
        lambda: f"{answer}{_MVS}{digits}",
        lambda: digits[: len(digits) // 2] + _MVS + digits[len(digits) // 2 :],
        lambda: f"{word}{_MVS}{digits}",
        lambda: f"{m.sentence()}{_MVS}{answer}",
        lambda: f"{word}.{_MVS}{m.pick(_SENT_WORDS)} {answer}",
        lambda: f"{m.pick(_ABBREVIATIONS)}{_MVS}{answer}",
        lambda: f"{m.pick(_QUOTES)}{_MVS}{word}{_MVS}{m.pick(_QUOTES)}",
        lambda: f"{word}{m.pick(_DASHES)}{_MVS}{answer}",
        lambda: m.pick((_MVS, _MVS * 2, f" {_MVS} ", f"{_MVS}\u3000", f"{_MVS}。", f".{_MVS}")),
        lambda: answer.replace(" ", _MVS) + _MVS + word.lower(),
        lambda: _MVS.join(answer),
        lambda: f"{word}{_MVS}.{_MVS}{m.word()}",
    )
    return m.pick(forms)()


FILES: dict[str, Callable[[Question, _Maker], str]] = {
    "latin_sentences": _latin_sentences,
    "dashes_mixed_script": _dashes_mixed_script,
    "long_answers": _long_answers,
    "fullwidth_emoji_punct": _fullwidth_emoji_punct,
    "abbreviations_quotes": _abbreviations_quotes,
    "random_slices": _random_slices,
    "mongolian_vowel_separator": _mongolian_vowel_separator,
}


def _with_gaps(name: str, predictions: Iterator[tuple[str, str]]) -> dict[str, str]:
    # About 3% unanswered (scored 0, kept in the denominator) and two ids the dataset lacks.
    rng = random.Random(f"{SEED}:{name}:gaps")
    kept = {qid: text for qid, text in predictions if rng.random() >= 0.03}
    kept[f"NOT_IN_DEV_{name}"] = "北京"
    kept["DEV_0_QUERY_0 "] = "x"  # the scorer strips dataset ids, never prediction keys
    return kept


def prediction_files(dataset: dict) -> dict[str, dict[str, str]]:
    """``{file name: {question id: prediction}}`` for every stress file, the same on every run."""
    questions = dev_questions(dataset)
    spans = latin_spans(questions)
    contexts = list(dict.fromkeys(q.context for q in questions))
    files = {}
    for name, make in FILES.items():
        maker = _Maker(name, spans, contexts)
        files[name] = _with_gaps(name, ((q.qid, make(q, maker)) for q in questions))
    return files


def doc_files(dataset: dict) -> dict[str, dict[str, str]]:
    """The four files behind the dev-set numbers in ../shared/docs/metrics-cmrc2018.md."""
    questions = dev_questions(dataset)
    first = [(q.qid, q.answers[0]) for q in questions]
    return {
        "doc_gold": dict(first),
        "doc_first_five": {q.qid: q.context[:5] for q in questions},
        "doc_half_answer": {qid: text[: max(1, len(text) // 2)] for qid, text in first},
        "doc_gold_1609": dict(first[:1609]),
    }


def digest(predictions: dict[str, str]) -> str:
    """sha256 of a prediction file's content, so a test knows it regenerated the scored file."""
    text = json.dumps(predictions, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def punkt_parameters_digest(parameters) -> str:
    """sha256 of Punkt parameters (abbreviations, collocations, sentence starters, orthographic
    context), comparable between NLTK's ``english.pickle`` and the package's parameters."""
    payload = [
        sorted(parameters.abbrev_types),
        sorted(map(list, parameters.collocations)),
        sorted(parameters.sent_starters),
        sorted([word_type, flags] for word_type, flags in parameters.ortho_context.items()),
    ]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()
