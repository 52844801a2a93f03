"""Cost of one reward call over a GRPO batch against encoding its completions alone.

A GRPO step scores 32 prompts × 8 completions = 256 completions. The reward side is one call
of the paper's reward as the trainer makes it (``CompositeReward.paper_default``: shaped
similarity + language consistency, with TRL's keyword arguments and conversational
completions), after the references have been encoded once (``precompute``, as
``alignment-tax train`` does before training). The bare side is one
``SentenceTransformer.encode`` of the same 256 completion texts with the same settings
(batch size 64, normalised). Both use the `small` tiny embedder (~11M parameters); texts are
real Chinese sentences from ../shared/data (references from CMiLBench, completions drawn from
CMiLBench and OpenPecha so that no completion equals its reference). Each side is timed
``--repeats`` times after a warm-up, interleaved; the ratio compares the fastest run of each
side (the least disturbed by other work on the machine), and the medians are printed too.

It also reports the cold call (an empty reference cache: 256 completions + 32 references in
one encode call), which is what a call costs without ``precompute``.

Usage: python bench/reward.py [--repeats 7] [--data-dir ../shared/data]
Prints the ratio reward / bare (target: at most 1.10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from alignment_tax.data.parallel import load_parallel
from alignment_tax.models.loading import load_embedder
from alignment_tax.models.tiny import build_tiny_model
from alignment_tax.rewards import CompositeReward, SemanticSimilarityReward

PROMPTS, GENERATIONS, BATCH_SIZE = 32, 8, 64


def batch(data_dir: Path):
    """References (one per prompt, repeated per generation) and 256 conversational completions."""
    cmil = [p.target for p in load_parallel(data_dir / "bo_zh_mt" / "cmilbench_bo_zh.jsonl")]
    pecha = [p.target for p in load_parallel(data_dir / "bo_zh_mt" / "openpecha_bo_zh.jsonl")]
    references = cmil[:PROMPTS]
    pool = [text for pair in zip(cmil[PROMPTS:], pecha) for text in pair]
    completions, reference_column, prompts = [], [], []
    for i, reference in enumerate(references):
        for k in range(GENERATIONS):
            text = pool[(i * GENERATIONS + k) % len(pool)]
            completions.append([{"role": "assistant", "content": text}])
            reference_column.append(reference)
            prompts.append([{"role": "user", "content": f"请把下面的藏文翻译成简体中文。\n\n藏文：{i}"}])
    return prompts, completions, reference_column, references


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = parser.parse_args()
    torch.manual_seed(0)

    prompts, completions, reference_column, references = batch(Path(args.data_dir))
    texts = [c[0]["content"] for c in completions]
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_model(Path(tmp) / "embedder", kind="embedder", size="small", seed=0)
        encoder = load_embedder(str(path), device="cpu")

        reward = CompositeReward.paper_default(encoder, tau=0.3, language="zh", batch_size=BATCH_SIZE)
        reward.component("similarity").precompute(references)

        def bare():
            encoder.encode(
                texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )

        metrics: dict[str, float] = {}

        def call():
            reward(
                prompts=prompts,
                completions=completions,
                completion_ids=None,
                trainer_state=None,
                log_extra=lambda *a: None,
                log_metric=metrics.__setitem__,
                reference=reference_column,
            )

        def cold():
            fresh = SemanticSimilarityReward(encoder, tau=0.3, batch_size=BATCH_SIZE)
            fresh(prompts=prompts, completions=completions, reference=reference_column)

        for fn in (bare, call, cold):  # warm-up
            fn()
        bare_times, call_times, cold_times = [], [], []
        for _ in range(args.repeats):
            bare_times += timed(bare, 1)
            call_times += timed(call, 1)
            cold_times += timed(cold, 1)

    bare_s, call_s, cold_s = (min(t) for t in (bare_times, call_times, cold_times))
    medians = [statistics.median(t) for t in (bare_times, call_times, cold_times)]
    result = {
        "completions": len(completions),
        "prompts": PROMPTS,
        "embedder": "tiny small (BERT 384×6, mean pooling)",
        "torch_threads": torch.get_num_threads(),
        "bare_encode_s": round(bare_s, 4),
        "reward_call_s": round(call_s, 4),
        "reward_call_cold_cache_s": round(cold_s, 4),
        "ratio": round(call_s / bare_s, 3),
        "ratio_cold_cache": round(cold_s / bare_s, 3),
        "ratio_of_medians": round(medians[1] / medians[0], 3),
        "repeats": args.repeats,
        "target": 1.10,
        "logged": sorted(metrics),
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(
        f"ratio reward / bare encode: {result['ratio']:.3f} (target ≤ 1.10); "
        f"cold reference cache: {result['ratio_cold_cache']:.3f}"
    )


if __name__ == "__main__":
    main()
