"""What a LoRA adapter costs `alignment-tax evaluate`'s generation, against the same adapter merged and saved.

Model: a randomly initialised Qwen3 that is deep and narrow (36 layers like Qwen3-4B, hidden 128,
the package's 4,000-token tokenizer), where a decode step is pure per-operation overhead, the
regime of a 4B model on a GPU; adapter: rank-64 LoRA on all seven projections with random A and
B (B not zero, so its outputs differ from the base's). M is that adapter merged into its base
(PEFT's ``merge_and_unload``) and saved with the tokenizer.

Three sides, each the whole `evaluate()` call (engine hf, task cmrc2018 only, the first N CMRC
prompts, no base) into a fresh output folder, so the generation cache serves nothing:

* ``--adapter A``: the default, the adapter folded into the weights for generation;
* ``--model M``: the merged checkpoint;
* ``--adapter A --no-merge-adapter``: generation through PEFT's unmerged LoRA layers.

Each model is loaded once, before any timer (as in bench/evaluate_throughput.py: the timers hold
evaluate's own work, the fold and restore of the weights included, not reading files; the load
times are printed apart). Each side runs one batch to warm up, then the sides take turns for
``--repeats`` rounds, so load on the machine hits them alike; the medians are compared, of this
process's CPU time (one thread: on a shared machine the wall clock also counts the neighbours)
and of the wall clock. A ratio is
printed only when the two sides' generated texts are identical; otherwise the script says how
many differ and exits 1.

Usage: python bench/adapter_overhead.py [--n 48] [--batch-size 8] [--max-new-tokens 32] [--repeats 3]
Prints the ratio adapter / merged model with merging on (target: at most 1.10) and off.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread: other processes share the cores

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

from alignment_tax.evaluation import evaluate as evaluate_module
from alignment_tax.evaluation.evaluate import EvaluateOptions, evaluate
from alignment_tax.models.loading import load_for_evaluation
from alignment_tax.models.tiny import build_tiny_model
from alignment_tax.models.tiny_adapter import build_tiny_adapter

LAYERS, HIDDEN = 36, 128  # the mini model's widths (hidden 128, MLP 384, 4 heads of 32) at Qwen3-4B's depth


def build_models(work: Path) -> tuple[Path, Path, Path]:
    """The deep narrow base, its random rank-64 adapter A, and M = A merged into the base and saved."""
    from peft import PeftModel
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    mini = build_tiny_model(work / "mini", kind="lm", size="mini", seed=0)
    widths = AutoConfig.from_pretrained(mini).to_dict()
    widths.pop("layer_types", None)  # one per layer: recomputed for the new depth
    config = Qwen3Config(**{**widths, "num_hidden_layers": LAYERS})
    assert config.hidden_size == HIDDEN
    torch.manual_seed(0)
    base = Qwen3ForCausalLM(config).float().eval()
    base.generation_config = GenerationConfig.from_pretrained(mini)
    base_dir = work / "deep"
    base.save_pretrained(base_dir)
    tokenizer = AutoTokenizer.from_pretrained(mini)
    tokenizer.save_pretrained(base_dir)
    adapter_dir = build_tiny_adapter(base_dir, work / "adapter", rank=64, seed=1)
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter_dir).merge_and_unload()
    merged_dir = work / "merged"
    merged.save_pretrained(merged_dir)
    tokenizer.save_pretrained(merged_dir)
    return base_dir, adapter_dir, merged_dir


def outputs(folder: Path) -> list[str]:
    lines = (folder / "samples" / "cmrc2018.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["output"] for line in lines]


class Side:
    """One way of running evaluate, with its model already in memory."""

    def __init__(self, name: str, work: Path, args, model: str, adapter: str | None, merge: bool = True):
        self.name, self.work, self.args, self.merge = name, work / name, args, merge
        self.model, self.adapter = model, adapter
        start = time.perf_counter()
        self.loaded = load_for_evaluation(model, adapter, "cpu", "float32")
        self.load_seconds = time.perf_counter() - start
        self.seconds: list[float] = []  # wall clock
        self.cpu_seconds: list[
            float
        ] = []  # this process's CPU time: what the neighbours on a shared machine do not add
        self.texts: list[str] | None = None

    def run(self, label: str, limit: int | None = None) -> None:
        args = self.args
        options = EvaluateOptions(
            tasks=["cmrc2018"],
            output=str(self.work / label),
            model=self.model,
            adapter=self.adapter,
            limit=limit or args.n,
            batch_size=args.batch_size,
            device="cpu",
            dtype="float32",
            data_dir=args.data_dir,
            max_gen_toks={"cmrc2018": args.max_new_tokens},
            merge_adapter=self.merge,
        )
        with mock.patch.object(evaluate_module, "load_for_evaluation", return_value=self.loaded):
            start, cpu_start = time.perf_counter(), time.process_time()
            results = evaluate(options)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        if limit is not None:
            return
        texts = outputs(self.work / label)
        if self.texts is not None and texts != self.texts:
            sys.exit(f"{self.name}: run {label} generated other texts than its first run")
        self.texts = texts
        self.merge_record = results["config"].get("adapter_merge")
        self.seconds.append(seconds)
        self.cpu_seconds.append(cpu_seconds)


def compare(side: Side, reference: Side, target: float | None) -> bool:
    """Print side / reference if both generated the same texts; say how many differ otherwise."""
    differ = sum(a != b for a, b in zip(side.texts, reference.texts, strict=True))
    ratio = statistics.median(side.seconds) / statistics.median(reference.seconds)
    cpu_ratio = statistics.median(side.cpu_seconds) / statistics.median(reference.cpu_seconds)
    if differ:
        print(f"{side.name} / {reference.name}: {differ}/{len(side.texts)} outputs differ, no ratio")
        return False
    goal = f" (target <= {target:.2f})" if target else ""
    print(
        f"{side.name} / {reference.name}: outputs identical ({len(side.texts)}/{len(side.texts)}); "
        f"ratio {cpu_ratio:.3f} in CPU time{goal}, {ratio:.3f} in wall time"
    )
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="CMRC 2018 prompts (evaluate --limit)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32, help="evaluate --max-gen-toks cmrc2018=N")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after the warm-up")
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    work = Path(tempfile.mkdtemp(prefix="bench-adapter-"))
    base_dir, adapter_dir, merged_dir = build_models(work)
    merged_model = Side("model M", work, args, str(merged_dir), None)
    folded = Side("adapter (merged)", work, args, str(base_dir), str(adapter_dir))
    unmerged = Side("adapter (unmerged)", work, args, str(base_dir), str(adapter_dir), merge=False)
    sides = [folded, merged_model, unmerged]
    for side in sides:
        side.run("warm-up", limit=args.batch_size)  # one batch: every code path once, at a sixth of the cost
    for round_ in range(args.repeats):
        for side in sides:
            side.run(f"run{round_}")

    base_texts = outputs_of_base(work, args, base_dir)
    print(f"model: Qwen3, {LAYERS} layers, hidden {HIDDEN}, fp32, {torch.get_num_threads()} thread(s)")
    print(f"adapter: rank 64 on all seven projections, random A and B; {args.n} CMRC prompts, batch {args.batch_size}")
    print(f"max new tokens {args.max_new_tokens}; {args.repeats} timed rounds after one warm-up per side")
    changed = sum(a != b for a, b in zip(folded.texts, base_texts, strict=True))
    print(f"the adapter changes {changed}/{len(base_texts)} outputs against the base")
    for side in sides:
        wall, cpu = (", ".join(f"{s:.2f}" for s in values) for values in (side.seconds, side.cpu_seconds))
        print(
            f"{side.name}: median {statistics.median(side.cpu_seconds):.2f} s CPU [{cpu}], "
            f"{statistics.median(side.seconds):.2f} s wall [{wall}]; load {side.load_seconds:.2f} s"
        )
    print(f"adapter (merged) recorded: {folded.merge_record}; adapter (unmerged): {unmerged.merge_record}")
    ok = compare(folded, merged_model, 1.10)
    ok = compare(unmerged, merged_model, None) and ok
    if not ok:
        sys.exit(1)


def outputs_of_base(work: Path, args, base_dir: Path) -> list[str]:
    """The bare base's outputs (one untimed run): the adapter must change them for the comparison to mean much."""
    base = Side("base", work, args, str(base_dir), None)
    base.run("once")
    return base.texts


if __name__ == "__main__":
    main()
