"""Drift pass against bare forward passes: time and peak memory, measured in one run.

Model: the `small` tiny model (~27M parameters), or with ``--shape`` a random model at a
published Qwen3 width (151,936-row vocabulary) with ``--layers`` decoder layers, in each case
with a rank-64 LoRA adapter on every linear projection (the reference study's shape), over the
first N deduplicated CMRC 2018 dev passages.

* time: for each batch (the drift pass's own batches: same windows, order and padding), two
  bare forward passes (candidate, then base with the adapter disabled; no_grad; full logits)
  and the drift pass, timed back to back so that load on the machine hits both alike. The
  ratio is drift / bare (target: at most 1.10).
* memory: two fresh processes, one running the drift pass over the corpus, one running bare
  forward passes of the base over the same batches; each samples its resident memory every
  millisecond. The ratio is the drift process's peak over the bare one's (target: at most
  1.15); the increase over the memory held before the pass is printed too. The bare side holds
  one model's full logits for a batch (batch x length x vocabulary, in the model's dtype), as a
  plain forward does; the drift pass holds two slices of at most `chunk` tokens instead. Both
  sizes are printed: at a 152k vocabulary the bare side's logits dominate its peak.
* packing (``--only packing``): the share of padded positions in the drift pass's batches over
  the deduplicated CMRC dev passages (drift's default corpus), padded (one window per row,
  longest first) and packed (windows concatenated into rows of at most the longest window; and
  one row per batch), at ``--batch-size`` and the 2,048-token window; then the drift pass over
  ``--passages`` in both layouts, each warmed up, timed alternately ``--rounds`` times, the
  values compared window by window (``--tolerance``) before the ratio packed / padded prints.

Usage: python bench/drift.py [--passages 200] [--batch-size 8] [--data-dir ../shared/data]
       python bench/drift.py --shape qwen3-4b --layers 2 [--dtype float32] --passages 24
       python bench/drift.py --only packing --shape qwen3-0.6b --layers 2 --passages 12
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

WINDOW = 2048
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Samples resident memory in a thread; CPU tensors have no allocator counter to read."""

    def __enter__(self):
        self.before = resident_bytes()
        self.peak = self.before
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, resident_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self.peak = max(self.peak, resident_bytes())


def prepare(work: Path, args):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignment_tax.data import load_corpus
    from alignment_tax.models.tiny import build_tiny_model
    from alignment_tax.models.tiny_adapter import build_tiny_adapter

    name = f"{args.shape}-{args.layers}l-{args.dtype}" if args.shape else "small"
    model_dir, adapter_dir = work / name, work / f"{name}-adapter"
    if not (adapter_dir / "adapter_config.json").exists():
        if args.shape:
            build_tiny_model(
                model_dir, shape=args.shape, layers=args.layers, dtype=args.dtype, seed=0, log=lambda *a: None
            )
        else:
            build_tiny_model(model_dir, size="small", seed=0)
        build_tiny_adapter(model_dir, adapter_dir, rank=64, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    texts = load_corpus(Path(args.data_dir) / "cmrc2018" / "cmrc2018_dev.json", dedupe=True)[: args.passages]
    return model, tokenizer, texts


def describe_memory(model, batches, chunk: int) -> None:
    """What each side holds beyond the weights: full logits (bare) against two slices (drift)."""
    vocab = model.get_base_model().get_output_embeddings().weight.shape[0]
    dtype_bytes = next(model.parameters()).element_size()
    largest = max(len(batch) * max(len(w.token_ids) for w in batch) for batch in batches)
    rows = max(1, chunk // vocab)
    mib = 1024 * 1024
    print(f"vocabulary {vocab}, weights {next(model.parameters()).dtype}; largest batch {largest} positions")
    print(
        f"bare forward's full logits for that batch: {largest * vocab * dtype_bytes / mib:.0f} MiB;"
        f" drift's two float32 slices of {rows} tokens: {2 * rows * vocab * 4 / mib:.0f} MiB"
    )


def batches_of(tokenizer, texts, batch_size):
    from alignment_tax.evaluation.drift import plan_windows, tokenize_corpus

    windows = plan_windows(tokenize_corpus(tokenizer, texts), WINDOW)
    order = sorted(range(len(windows)), key=lambda i: -len(windows[i].token_ids))
    return [[windows[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]


def bare_forward(model, tokenizer, batch, with_adapter: bool):
    from alignment_tax.evaluation.drift import _batch_tensors

    input_ids, mask, positions, _ = _batch_tensors(batch, tokenizer.pad_token_id, "right", "cpu")
    if with_adapter:
        return model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits
    with model.disable_adapter():
        return model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits


def drift_from_bare(model, tokenizer, batch):
    """Per-token NLL (candidate, base) and KL computed from the two bare forwards' full logits."""
    candidate = torch.log_softmax(bare_forward(model, tokenizer, batch, True).float(), dim=-1)
    base = torch.log_softmax(bare_forward(model, tokenizer, batch, False).float(), dim=-1)
    rows, positions, targets = [], [], []
    for row, window in enumerate(batch):  # right padding: logits at p predict the token at p + 1
        scored = range(window.first_scored - 1, len(window.token_ids) - 1)
        rows += [row] * len(scored)
        positions += list(scored)
        targets += [window.token_ids[p + 1] for p in scored]
    logp, base_logp, targets = candidate[rows, positions], base[rows, positions], torch.tensor(targets)
    nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    base_nll = -base_logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    kl = (logp.exp() * (logp - base_logp)).sum(-1).clamp(min=0.0)
    return [values.numpy() for values in (nll, base_nll, kl)]


def time_ratio(work: Path, args) -> None:
    from alignment_tax.evaluation.drift import _score_batch, default_chunk_elements

    model, tokenizer, texts = prepare(work, args)
    batches = batches_of(tokenizer, texts, args.batch_size)
    chunk = args.chunk_elements or default_chunk_elements(model)  # default: what token_drift uses here
    bare_seconds = drift_seconds = 0.0
    tokens = 0
    with torch.no_grad():
        # Warm-up of both sides on the smallest batch, and the gate: the drift pass must give the
        # values the bare logits give, or the two sides did not do the same work and no ratio is
        # reported. The tolerance covers the head applied to all positions (bare) or to the scored
        # ones in slices (drift): float32 sums in another order, or a bfloat16 logit one ulp off
        # (0.125 for |logit| < 32).
        tolerance = 1e-3 if next(model.parameters()).dtype == torch.float32 else 0.125
        expected = drift_from_bare(model, tokenizer, batches[-1])
        got = _score_batch(model, None, batches[-1], tokenizer.pad_token_id, "right", chunk)
        worst = max(float(abs(a - b).max()) for a, b in zip(got, expected))
        print(f"drift pass against the bare logits (nll, base nll, KL): largest difference {worst:.2g}")
        if worst > tolerance:
            raise SystemExit(f"no ratio: the drift pass differs from the bare forwards by {worst:.3g} > {tolerance:g}")
        for batch in batches:
            start = time.perf_counter()
            bare_forward(model, tokenizer, batch, True)
            bare_forward(model, tokenizer, batch, False)
            middle = time.perf_counter()
            scores = _score_batch(model, None, batch, tokenizer.pad_token_id, "right", chunk)
            drift_seconds += time.perf_counter() - middle
            bare_seconds += middle - start
            tokens += sum(len(w.token_ids) for w in batch)
            if len(scores[0]) != sum(w.n_scored for w in batch):
                raise SystemExit("no ratio: the drift pass did not score every token of a batch")
    print(f"passages: {len(texts)}, tokens: {tokens}, batches of {args.batch_size}: {len(batches)}")
    describe_memory(model, batches, chunk)
    print(f"two bare forward passes: {bare_seconds:.1f} s; drift pass: {drift_seconds:.1f} s")
    print(f"time ratio drift / (base + candidate forward): {drift_seconds / bare_seconds:.3f} (target <= 1.10)")


def padding_shares(tokenizer, texts, batch_size: int) -> dict[str, float]:
    """Padded positions / all positions of the batches, for each layout, over ``texts``."""
    from alignment_tax.evaluation.drift import plan_windows, tokenize_corpus
    from alignment_tax.evaluation.drift_batches import padding_share, plan_batches

    lengths = [len(w.token_ids) for w in plan_windows(tokenize_corpus(tokenizer, texts), WINDOW)]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    longest, budget = max(lengths), batch_size * max(lengths)
    return {
        "padded": padding_share(lengths, plan_batches(lengths, order, batch_size), None),
        f"packed, rows of {longest} tokens (the longest window)": padding_share(
            lengths, plan_batches(lengths, order, batch_size, longest), longest
        ),
        f"packed, one row of {budget} tokens per batch": padding_share(
            lengths, plan_batches(lengths, order, 1, budget), budget
        ),
    }


def packing_ratio(work: Path, args) -> None:
    from alignment_tax.data import load_corpus
    from alignment_tax.evaluation.drift import _score_batch, default_chunk_elements, plan_windows, tokenize_corpus
    from alignment_tax.evaluation.drift_batches import padding_share, plan_batches

    model, tokenizer, texts = prepare(work, args)
    corpus = load_corpus(Path(args.data_dir) / "cmrc2018" / "cmrc2018_dev.json", dedupe=True)
    print(f"padded positions in drift's batches, {len(corpus)} CMRC dev passages, batch {args.batch_size}:")
    for layout, share in padding_shares(tokenizer, corpus, args.batch_size).items():
        print(f"  {layout}: {share:.2%}")

    windows = plan_windows(tokenize_corpus(tokenizer, texts), WINDOW)
    lengths = [len(w.token_ids) for w in windows]
    order = sorted(range(len(windows)), key=lambda i: -lengths[i])
    chunk = args.chunk_elements or default_chunk_elements(model)
    layouts = {"padded": None, "packed": max(lengths)}

    def run(rows):
        values = {}
        for batch in plan_batches(lengths, order, args.batch_size, rows):
            scored = _score_batch(
                model, None, [windows[i] for i in batch], tokenizer.pad_token_id, "right", chunk, rows
            )
            cursor = 0
            for i in batch:
                values[i] = np.stack([array[cursor : cursor + windows[i].n_scored] for array in scored])
                cursor += windows[i].n_scored
        return values

    seconds = dict.fromkeys(layouts, 0.0)
    with torch.no_grad():
        outputs = {name: run(rows) for name, rows in layouts.items()}  # warm-up, and the values compared
        worst = max(float(np.abs(outputs["packed"][i] - outputs["padded"][i]).max()) for i in range(len(windows)))
        if worst > args.tolerance:
            raise SystemExit(f"packed values differ from padded ones by {worst:.3g} > {args.tolerance:g}: no ratio")
        for _ in range(args.rounds):  # alternately, so that the machine's load hits both alike
            for name, rows in layouts.items():
                start = time.perf_counter()
                run(rows)
                seconds[name] += time.perf_counter() - start
    tokens = sum(lengths)
    print(f"passages: {len(texts)}, tokens: {tokens}, windows: {len(windows)}, batch {args.batch_size}")
    shares = {
        name: padding_share(lengths, plan_batches(lengths, order, args.batch_size, rows), rows)
        for name, rows in layouts.items()
    }
    print(f"their padded positions: padded {shares['padded']:.2%}, packed {shares['packed']:.2%}")
    print(f"largest difference, packed against padded (nll, base nll, KL): {worst:.3g} (allowed {args.tolerance:g})")
    print(f"drift pass, {args.rounds} round(s): padded {seconds['padded']:.1f} s, packed {seconds['packed']:.1f} s")
    print(f"time ratio packed / padded: {seconds['packed'] / seconds['padded']:.3f}")


def memory_child(work: Path, args) -> None:
    from alignment_tax.evaluation.drift import token_drift

    model, tokenizer, texts = prepare(work, args)
    batches = batches_of(tokenizer, texts, args.batch_size)
    with torch.no_grad(), PeakMemory() as memory:
        if args.child == "drift":
            token_drift(model, tokenizer, texts, batch_size=args.batch_size, window=WINDOW)
        else:
            for batch in batches:
                bare_forward(model, tokenizer, batch, False)
    print(json.dumps({"before": memory.before, "peak": memory.peak}))


def memory_ratio(work: Path, args) -> None:
    results = {}
    for child in ("bare", "drift"):
        command = [sys.executable, __file__, "--child", child, "--work", str(work)]
        command += ["--passages", str(args.passages), "--batch-size", str(args.batch_size), "--data-dir", args.data_dir]
        if args.shape:
            command += ["--shape", args.shape, "--layers", str(args.layers), "--dtype", args.dtype]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        results[child] = json.loads(output)
    bare, drift = results["bare"], results["drift"]
    mib = 1024 * 1024
    print(
        f"peak resident memory: bare forward of the base {bare['peak'] / mib:.0f} MiB, drift with adapter {drift['peak'] / mib:.0f} MiB"
    )
    print(f"memory ratio drift / bare forward: {drift['peak'] / bare['peak']:.3f} (target <= 1.15)")
    bare_growth, drift_growth = bare["peak"] - bare["before"], drift["peak"] - drift["before"]
    print(
        f"growth over the loaded model during the pass: bare {bare_growth / mib:.0f} MiB, drift {drift_growth / mib:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--data-dir", default=str(SHARED))
    parser.add_argument(
        "--shape", choices=["qwen3-0.6b", "qwen3-4b"], help="a published Qwen3 width (default: the small tiny model)"
    )
    parser.add_argument("--layers", type=int, default=2, help="decoder layers of the --shape model")
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16"], default="float32", help="weights of the --shape model"
    )
    parser.add_argument(
        "--chunk-elements", type=int, help="time the drift pass with this slice instead (e.g. 4194304: 27 rows at 152k)"
    )
    parser.add_argument(
        "--only", choices=["time", "memory", "packing"], help="run one measurement (packing runs only when named)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="timed passes of each layout (packing)")
    parser.add_argument(
        "--tolerance", type=float, default=1e-4, help="largest packed-padded difference allowed (packing)"
    )
    parser.add_argument("--child", choices=["bare", "drift"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-drift-"))
    if args.child:
        memory_child(work, args)
        return
    if args.only == "packing":
        packing_ratio(work, args)
        return
    if args.only != "memory":
        time_ratio(work, args)
    if args.only != "time":
        memory_ratio(work, args)


if __name__ == "__main__":
    main()
