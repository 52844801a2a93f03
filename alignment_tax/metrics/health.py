"""Output health: whether each generated output is empty, repetitive or off-script, and the rates.

A score means little when the outputs behind it are empty or degenerate, so every generation
task records, beside its scores, per-item flags and their rates over the task's items:

* **empty**: nothing is left after the cleaning every metric sees
  (:func:`~alignment_tax.metrics.cleaning.clean_prediction`: outer whitespace and a leading
  ``<think>…</think>`` block removed).
* **repetitive**: the output is dominated by a loop (the definition below).
* **off_script** (tasks with a target language only): the output is not written in the target
  script, i.e. ``1 − lang_consistency`` for the 0/1 consistency the tasks record per item. An
  empty output has consistency 0, so it is also off-script.
* **truncated**: recorded by the generation layer where it knows the generation hit its token
  cap; this module only turns the flag into ``truncated_rate``.

**Repetitive, precisely.** The cleaned output is split into units by
:func:`~alignment_tax.metrics.segmentation.segment`: a Han character, a Tibetan syllable (split on
tsheg U+0F0B, shads U+0F0D and spaces), a word of any other script, lower-cased, punctuation
dropped; an output with no such unit (only punctuation or symbols) falls back to its non-space
characters. With L units, the output is repetitive when ``L >= MIN_UNITS`` (8) and either

1. ``loop_share >= LOOP_SHARE`` (0.5): at least half of the units lie inside a *loop*, a block of
   any length p (1 … L/3 units: a character, a phrase, a whole sentence) repeated back to back at
   least ``MIN_REPEATS`` (3) times; a loop's span includes a final partial copy; or
2. ``distinct_share < MIN_DISTINCT_SHARE`` (0.5): fewer than half of its unit 4-grams are
   distinct (each occurs more than twice on average), which catches a passage repeated with
   something else between the copies.

Both rules read the units as written and again after *list enumerators* are removed
(:func:`without_enumerators`), and either reading may flag the output: the
"1." "2)" "（3）" "④" "五、" that start an item (where an item starts, at the start, after a
space, a line break or a sentence or clause mark, anything may follow; elsewhere a number list
"1、2、3", a decimal "2.5" or a score "3:2" is left alone, and a Chinese numeral always is), and
the number of "第N条/章/点/步/名…".
A list that repeats one item ("1. 宋智克\\n2. 宋智克\\n3. 宋智克 …") is then a loop like any other,
where the changing numbers used to break both rules; a list of distinct items stays distinct.

Empty and repetitive exclude each other (an empty output has no units), so the share of an
output set that is *degenerate* (empty or repetitive) is ``empty_rate + repetition_rate``.

**Why these thresholds.** Measured on the gold references in ``../shared/data`` (CMRC 2018 dev
and trial answers, both sides of the CMiLBench and OpenPecha pairs, the TibetanQA titles, and as
long-text checks the CMRC and TibetanQA passages: 20,515 strings):

* 3 copies, not 2: two copies are ordinary in real text (the CMRC answers 「河流河流」 and
  「巴斯-东北森麻实、北森麻实」, 73% of its 11 units in a 2-copy loop).
* ``MIN_UNITS = 8``: with 3 copies the only gold strings mostly inside a loop are 3-unit chants
  (「吽吽吽……」, 「ཧཱུྃ་ཧཱུྃ་ཧཱུྃ།」); 8 leaves room, and a model that loops runs on to its token
  cap, far past 8 units.
* ``LOOP_SHARE = 0.5`` ("dominated"): the highest gold loop share from 4 units up is 0.375
  (「桑巴、恰恰恰、探戈等」), above 8 units 0.14, in the passages 0.10.
* ``MIN_DISTINCT_SHARE = 0.5``: the lowest gold distinct 4-gram share from 8 units up is 0.68 (a
  180-syllable TibetanQA passage; 0.74 for answers and sentences); a block repeated k times
  scores about 1/k: two copies of a sentence score just over 0.5 and pass, three about 0.35.
* Numbers stay units of their own: folding them into one unit (to catch "step 1 … step 2 …"
  loops) flagged 10 real CMRC answers that list numbers (「5迪拉姆、10迪拉姆、20迪拉姆…」). Only
  enumerators are removed, which those answers do not have ("、" before a number is not an item start).
  Removing them moved no gold margin above: the CMRC passages' highest loop share went from 0.032 to
  0.040 (194 of their 1,104 have enumerators), the lowest distinct shares did not move.

With these values no gold string is flagged (``tests/test_health_metrics.py`` checks the answers,
the pairs and the titles on the files), and the degenerate outputs there (a character, a phrase,
a Tibetan syllable or a sentence looped, a long answer whose tail loops, a passage repeated between
fillers, a numbered or bulleted list of one item) all are. Not caught, by design: a loop shorter
than half the output, and a loop whose copies differ other than in an enumerator (a counter inside
the text, "宋智克1 宋智克2 …").

>>> is_empty("  <think>x</think>  "), is_empty("北京")
(True, False)
>>> is_repetitive("北京"), is_repetitive("哈" * 40), is_repetitive("the " * 12)
(False, True, True)
>>> is_repetitive("吽吽吽……")  # a 3-unit chant: too short to judge
False
>>> health_rates([{"empty": True, "repetitive": False}, {"empty": False, "repetitive": True},
...               {"empty": False, "repetitive": False}, {"empty": False, "repetitive": False}])
{'n': 4, 'empty_rate': 0.25, 'repetition_rate': 0.25}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alignment_tax.data.normalize import normalize_text
from alignment_tax.metrics.cleaning import clean_prediction
from alignment_tax.metrics.scripts import is_script_consistent
from alignment_tax.metrics.segmentation import segment

MIN_UNITS = 8
MIN_REPEATS = 3
LOOP_SHARE = 0.5
DISTINCT_N = 4
MIN_DISTINCT_SHARE = 0.5
# The report's rule: a gain by a run whose outputs are mostly empty or repetitive is not a gain.
MOSTLY_DEGENERATE = 0.5

# Per-item flags, and the rate each becomes (a task has a rate only where its items have the flag).
FLAG_RATES = {
    "empty": "empty_rate",
    "repetitive": "repetition_rate",
    "off_script": "off_script_rate",
    "truncated": "truncated_rate",
}
HEALTH_RATES = frozenset(FLAG_RATES.values())


def is_empty(output: Any) -> bool:
    """Nothing left after the cleaning every metric sees (None counts as empty).

    >>> is_empty("<think>reasoning</think>\\n "), is_empty("。")
    (True, False)
    """
    return output is None or clean_prediction(output) == ""


def units(text: str) -> list[str]:
    """The units repetition is counted in: Han characters, Tibetan syllables, other words.

    >>> units("我们，我们")
    ['我', '们', '我', '们']
    >>> units("བཀྲ་ཤིས་བཀྲ་ཤིས།")
    ['བཀྲ', 'ཤིས', 'བཀྲ', 'ཤིས']
    >>> units("Step 1: go. Step 2: go."), units("！！！")
    (['step', '1', 'go', 'step', '2', 'go'], ['！', '！', '！'])
    """
    found = segment(text)
    # Punctuation-only text has no segment; its characters still show a loop ("……………").
    return found or [char for char in normalize_text(text) if not char.isspace()]


# An item's enumerator. A number (any decimal digit: Arabic, Tibetan, full-width) closed by a
# bracket ("3)", "（3）"), or followed by a full stop, "、" or a colon: where an item starts (at the
# start, after whitespace or a sentence or clause mark) whatever follows ("1、2013年计划"),
# elsewhere not before a digit ("2.5", "3:2", "1、2") and not after a digit, a decimal point or "、"
# ("1、2、3" lists numbers). A Chinese numeral only where an item starts (elsewhere "统一、" is a
# word). And circled, parenthesised or full-stop numbers (①, ⑴, ⒈, ❶, ➀, ➊) wherever they are.
_ITEM_START = r"(?:^|(?<=[\s。；;：:！!？?，,]))"
_ENUMERATOR = re.compile(
    rf"{_ITEM_START}\d{{1,3}}[.．、:：]"
    r"|(?<![\d.．、])(?:[(（\[［【]?\d{1,3}[)）\]］】]|\d{1,3}[.．、:：](?!\d))"
    rf"|{_ITEM_START}[(（\[［【]?[一二三四五六七八九十]{{1,3}}[)）\]］】.．、:：]"
    r"|[\u2460-\u249b\u24ea-\u24ff\u2776-\u2793]"
)
# "第N条" (article, chapter, point, step, place…): the number goes, 第 and the classifier stay.
_ORDINAL = re.compile(
    r"(?<=第)\s*(?:\d{1,4}|[一二三四五六七八九十百千零〇两]{1,6})\s*(?=[条章节点步项款个部篇回集期名位层句])"
)


def without_enumerators(text: str) -> str:
    """``text`` without list enumerators, so that a list repeating one item reads as a loop.

    >>> without_enumerators("1. 宋智克\\n2. 宋智克\\n（3）宋智克 ④宋智克 五、宋智克")
    ' 宋智克\\n 宋智克\\n宋智克 宋智克 宋智克'
    >>> without_enumerators("第1条 宋智克 第二条 宋智克")
    '第条 宋智克 第条 宋智克'
    >>> without_enumerators("共有1、2、3和2.5万")  # numbers listed, a decimal: not enumerators
    '共有1、2、3和2.5万'
    """
    return _ORDINAL.sub("", _ENUMERATOR.sub("", text))


def loop_share(sequence: Sequence[str], min_repeats: int = MIN_REPEATS) -> float:
    """The share of units inside a loop: a block of p units repeated back to back ``min_repeats``+ times.

    >>> loop_share(list("我们我们我们"))
    1.0
    >>> loop_share(list("河流河流"))  # two copies are not a loop
    0.0
    >>> loop_share(list("今天很好哈哈哈哈"))  # 哈 four times: 4 of 8 units
    0.5
    """
    n = len(sequence)
    if n < min_repeats:
        return 0.0
    codes = np.unique(np.array(list(sequence), dtype=str), return_inverse=True)[1].ravel()
    covered = np.zeros(n, dtype=bool)
    for period in range(1, n // min_repeats + 1):
        # same[i]: unit i equals unit i + period. A run of `same` over i = s … e−1 makes units
        # s … e−1+period periodic: (e − s + period) units, that many / period copies of the block.
        same = (codes[period:] == codes[:-period]).astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], same, [0]))))
        starts, ends = edges[0::2], edges[1::2]
        long_enough = ends - starts >= (min_repeats - 1) * period
        for start, end in zip(starts[long_enough], ends[long_enough]):
            covered[start : end + period] = True
    return float(covered.mean())


def distinct_share(sequence: Sequence[str], n: int = DISTINCT_N) -> float:
    """Distinct n-grams over all n-grams of the units (1.0 when there is no n-gram).

    >>> distinct_share(list("abcabcabc"), 4)
    0.5
    """
    grams = list(zip(*(sequence[i:] for i in range(n))))
    return len(set(grams)) / len(grams) if grams else 1.0


def is_repetitive(output: Any) -> bool:
    """Whether the cleaned output, as written or with its enumerators removed, is dominated by a
    loop or by repeated 4-grams (module docstring).

    >>> is_repetitive("1. 宋智克\\n2. 宋智克\\n3. 宋智克"), is_repetitive("1. 宋智克\\n2. 李明\\n3. 王芳")
    (True, False)
    >>> is_repetitive("1. " * 20)  # nothing but enumerators: a loop as written
    True
    """
    if output is None:
        return False
    text = clean_prediction(output)
    # As written too: removing the enumerators must not hide a loop of them ("1. 1. 1. …").
    return any(_dominated(units(form)) for form in {text, without_enumerators(text)})


def _dominated(sequence: Sequence[str]) -> bool:
    if len(sequence) < MIN_UNITS:
        return False
    return loop_share(sequence) >= LOOP_SHARE or distinct_share(sequence) < MIN_DISTINCT_SHARE


def is_degenerate(output: Any) -> bool:
    """Empty or repetitive: an output whose score says nothing about the task.

    >>> is_degenerate(""), is_degenerate("བཀྲ་ཤིས་" * 10), is_degenerate("བཀྲ་ཤིས་བདེ་ལེགས།")
    (True, True, False)
    """
    return is_empty(output) or is_repetitive(output)


def is_off_script(output: Any, target_lang: str, lang_consistency: Any = None) -> bool:
    """``1 − lang_consistency`` as a flag: the item's recorded consistency, else computed from the output.

    >>> is_off_script("北京", "zh"), is_off_script("Beijing", "zh"), is_off_script("", "bo")
    (False, True, True)
    """
    if isinstance(lang_consistency, (int, float)) and not isinstance(lang_consistency, bool):
        return lang_consistency < 1
    return is_script_consistent(clean_prediction(output or ""), target_lang) < 1


def has_generated_text(items: Sequence[Mapping[str, Any]]) -> bool:
    """Whether these item records come from a generation task: every output is text.

    Log-likelihood tasks record a list of (log-likelihood, is-greedy) pairs instead.

    >>> has_generated_text([{"output": "北京"}, {"output": ""}]), has_generated_text([{"output": [[-1.2, False]]}])
    (True, False)
    """
    return bool(items) and all(isinstance(item.get("output"), str) for item in items)


def item_flags(output: Any, target_lang: str | None = None, lang_consistency: Any = None) -> dict[str, bool]:
    """The health flags of one output (``off_script`` only where the task has a target language).

    >>> item_flags("哈" * 20, "zh", 1.0)
    {'empty': False, 'repetitive': True, 'off_script': False}
    """
    flags = {"empty": is_empty(output), "repetitive": is_repetitive(output)}
    if target_lang:
        flags["off_script"] = is_off_script(output, target_lang, lang_consistency)
    return flags


def health_rates(items: Sequence[Mapping[str, Any]], recorded: Mapping[str, Any] | None = None) -> dict[str, float]:
    """``n`` and the rate of every flag the items carry; a rate in ``recorded`` (the task's
    metrics) fills in one the items do not carry (``truncated_rate`` reported by lm-eval's side)."""
    rates: dict[str, float] = {"n": len(items)}
    for flag, rate in FLAG_RATES.items():
        values = [item[flag] for item in items if isinstance(item.get(flag), bool)]
        if values and len(values) == len(items):
            rates[rate] = float(np.mean(values))
        elif recorded is not None and isinstance(recorded.get(rate), (int, float)):
            rates[rate] = float(recorded[rate])
    return rates


def flag_items(
    items: list[dict[str, Any]], target_lang: str | None, recorded: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """Add the health flags to each item record (in place) and return the task's rates."""
    for item in items:
        item.update(item_flags(item.get("output"), target_lang, item.get("lang_consistency")))
    return health_rates(items, recorded)


def degenerate_share(health: Mapping[str, Any] | None) -> float | None:
    """The share of outputs that are empty or repetitive (the two exclude each other).

    >>> degenerate_share({"empty_rate": 0.25, "repetition_rate": 0.5}), degenerate_share({})
    (0.75, None)
    """
    if not health or not any(isinstance(health.get(rate), (int, float)) for rate in ("empty_rate", "repetition_rate")):
        return None
    return float(health.get("empty_rate") or 0.0) + float(health.get("repetition_rate") or 0.0)


def mostly_degenerate(health: Mapping[str, Any] | None) -> bool:
    """More than half the outputs empty or repetitive: no score of them means anything.

    >>> mostly_degenerate({"empty_rate": 0.3, "repetition_rate": 0.3}), mostly_degenerate({"empty_rate": 0.5})
    (True, False)
    """
    share = degenerate_share(health)
    return share is not None and share > MOSTLY_DEGENERATE
