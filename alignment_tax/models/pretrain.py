"""Pretraining the demo's base: a small Qwen3 LM that knows (memorised) Chinese text.

A random base cannot lose a skill it never had, so the demo measures its tax on a model
pretrained here, on text the package may ship (``tiny_corpus/``, see its ``ATTRIBUTION.md``):
240 of the 256 CMRC 2018 trial passages and 800 lines of Tibetan verse. The other 16 trial
passages are held out and scored, so the manifest says how much of the skill generalises.

What the base knows is mostly memorised: the 21 passages the demo's CMRC questions and drift
are drawn from are among the 240 it was trained on, so the demo's tax is the forgetting of
text the base has seen, and the report says so. Pretraining on the passages it is measured on
is the only way a model this small, trained for minutes on a CPU, reaches a Chinese NLL well
below a uniform guess; on the held-out passages it stays far closer to one.

The run is deterministic on one thread (``torch.set_num_threads(1)`` for its duration): the
same seed and torch build give the same weights. ``make-tiny-model --pretrain`` runs it; the
package ships its result in fp16 (``pretrained/``), which ``--pretrained`` copies in a second.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).with_name("tiny_corpus")
ZH_PASSAGES = CORPUS_DIR / "cmrc_trial.txt"
BO_LINES = CORPUS_DIR / "bo.txt"
SHIPPED_DIR = Path(__file__).with_name("pretrained")
HELD_OUT_PASSAGES = 16  # the last trial passages: never trained on
BO_LINES_PER_DOCUMENT = 10
# The shape pretrained: wide enough to memorise 100k Chinese tokens in minutes on one core.
PRETRAIN_SIZE = "mini"


SEEN_NOTE = (
    "including the CMRC passages the demo's tax and drift are measured on: "
    "its tax there is the forgetting of memorised text"
)


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 1000
    seq_len: int = 512
    batch_size: int = 8
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.1
    seed: int = 0


def corpus_passages() -> tuple[list[str], list[str], list[str]]:
    """(Chinese passages trained on, Chinese passages held out, Tibetan documents)."""
    passages = _lines(ZH_PASSAGES)
    bo = _lines(BO_LINES)
    documents = ["\n".join(bo[i : i + BO_LINES_PER_DOCUMENT]) for i in range(0, len(bo), BO_LINES_PER_DOCUMENT)]
    return passages[:-HELD_OUT_PASSAGES], passages[-HELD_OUT_PASSAGES:], documents


def measured_passages() -> list[str]:
    """The passages the demo's tax is measured on: the drift corpus of the bundled CMRC sample,
    loaded as ``evaluate`` loads it."""
    from alignment_tax.data import load_corpus, samples
    from alignment_tax.data.layout import CMRC_PASSAGE_FIELD

    return load_corpus(str(samples.CMRC), field=CMRC_PASSAGE_FIELD, split="validation", dedupe=True)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def token_rows(tokenizer, documents: list[str], seq_len: int, seed: int):
    """The shuffled documents as one EOS-separated token stream, cut into rows of ``seq_len``."""
    import torch

    order = list(documents)
    random.Random(seed).shuffle(order)
    stream: list[int] = []
    for text in order:
        stream += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    usable = len(stream) // seq_len * seq_len
    return torch.tensor(stream[:usable]).view(-1, seq_len), len(stream)


def mean_nll(model, tokenizer, texts: list[str], max_tokens: int = 1024) -> float:
    """Mean NLL (nats) per token after the first, over ``texts`` (each cut at ``max_tokens``)."""
    import torch

    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens])[None]
            if ids.shape[1] < 2:
                continue
            loss = model(ids, labels=ids).loss.item()
            total, count = total + loss * (ids.shape[1] - 1), count + ids.shape[1] - 1
    return total / max(count, 1)


def pretrain(model, tokenizer, config: PretrainConfig, log=print) -> dict[str, Any]:
    """Train ``model`` in place on the corpus; return what the manifest records about it."""
    import torch

    trained, held_out, tibetan = corpus_passages()
    rows, n_tokens = token_rows(tokenizer, trained + tibetan, config.seq_len, config.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, betas=(0.9, 0.95)
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, config))
    generator = torch.Generator().manual_seed(config.seed)
    started = time.monotonic()
    with _one_thread():
        model.train()
        for step in range(config.steps):
            batch = rows[torch.randint(0, len(rows), (config.batch_size,), generator=generator)]
            loss = model(batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            if step % 100 == 0 or step == config.steps - 1:
                log(f"pretrain step {step + 1}/{config.steps}: loss {loss.item():.3f}")
        measured = mean_nll(model, tokenizer, measured_passages())
        unseen = mean_nll(model, tokenizer, held_out)
    model.eval()
    return {
        "steps": config.steps,
        "tokens_seen": config.steps * config.batch_size * config.seq_len,
        "corpus_tokens": n_tokens,
        "config": asdict(config),
        "corpus": {"zh_passages": len(trained), "zh_held_out": len(held_out), "bo_documents": len(tibetan)},
        "uniform_nll": math.log(len(tokenizer)),
        "seen": SEEN_NOTE,
        "nll_measured_passages": round(measured, 4),  # seen in pretraining: the demo's tax passages
        "nll_held_out_passages": round(unseen, 4),
        "seconds": round(time.monotonic() - started, 1),
    }


def _lr_factor(step: int, config: PretrainConfig) -> float:
    warmup = min(1.0, (step + 1) / config.warmup_steps)
    return warmup * 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps))


@contextlib.contextmanager
def _one_thread():
    """One intra-op thread: deterministic sums, and on two cores barely slower than two."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


SHIPPED_WEIGHTS = SHIPPED_DIR / "mini-zh.safetensors"
SHIPPED_RECORD = SHIPPED_DIR / "mini-zh.json"


def save_shipped(model, record: dict[str, Any], folder: Path = SHIPPED_DIR) -> Path:
    """Write ``model``'s weights in fp16 (half the bytes; CPU loads upcast them) and its record."""
    from safetensors.torch import save_file

    from alignment_tax.data.hashing import file_sha256

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / SHIPPED_WEIGHTS.name
    state = {
        name: tensor.detach().half().contiguous()
        for name, tensor in model.state_dict().items()
        if name != "lm_head.weight"
    }  # tied to the embedding
    save_file(state, str(weights))
    record = {**record, "weights_sha256": file_sha256(weights), "dtype": "float16"}
    (folder / SHIPPED_RECORD.name).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return weights


def load_shipped(model) -> dict[str, Any]:
    """Load the shipped weights into ``model`` (float32) and return their pretraining record."""
    from safetensors.torch import load_file

    state = {name: tensor.float() for name, tensor in load_file(str(SHIPPED_WEIGHTS)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"shipped weights do not fit the mini shape: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    record = json.loads(SHIPPED_RECORD.read_text(encoding="utf-8"))
    return {**record, "source": "shipped with the package (fp16, upcast to float32)"}
