"""The GPU suite: the costs that depend on Qwen3's real widths, measured on one card in one run.

    python bench/gpu.py [--shape qwen3-4b] [--layers N] [--out DIR] [--summary FILE] [--budget-s S] [--stages LIST]

On a random model with the published widths of ``--shape`` (qwen3-4b: all 36 layers, a
151,936-row vocabulary), in bf16 on a GPU (fp32 on a CPU, where ``--layers 2`` keeps it short):

* drift (the product's ``token_drift``, rank-64 LoRA on all seven projections) over real CMRC
  2018 passages: tokens/s, model-FLOPs utilisation against the card's bf16 peak (target ≥ 40%),
  time against two bare forward passes of the same batches, peak memory against one; and the
  controls: a zero adapter reads KL exactly 0, the random one does not;
* the same drift pass with its windows packed into rows without padding, with flex attention
  over one row per batch, and with compiled decoder layers (``gpu_drift.py``): MFU, time
  against the same two bare passes, agreement with the padded pass, the zero-adapter control;
* ``evaluate`` generation with the ``hf`` engine (CMRC prompts, greedy, one cap) against a bare
  batched ``generate``: tokens/s both ways; the ``vllm`` engine where vLLM imports;
* one GRPO optimiser step through the package's trainer at the paper's settings (8 generations,
  32 completions of up to 256 tokens, LoRA r64, beta 0.04): seconds and peak memory;
* the wall time a full evaluation of one checkpoint would take (CMRC dev, the MT and headline
  test sets, drift over the CMRC dev passages) from those rates, every output at its cap;
* one decode step at batch 32 with the rank-64 LoRA unmerged, folded in (the hf engine's
  default), and folded in with a static cache and the compiled forward (bench/gpu_decode.py;
  target ≤ 15 ms). ``--stages decode_step`` runs it alone (after build).

Prints one JSON summary (also written to ``--summary``, after every stage, so a run cut short
keeps what it measured) and exits 1 with one line per failed check. Stages that would overrun
``--budget-s`` are skipped and say so. Model FLOPs count matrix products only (linear layers,
LoRA, the LM head where it is applied, attention's two products over the causal context).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gpu_decode  # noqa: E402
import gpu_drift  # noqa: E402
import gpu_parts as parts  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="qwen3-4b", choices=["qwen3-4b", "qwen3-0.6b"])
    parser.add_argument("--layers", type=int, help="decoder layers (default: all on a GPU, 2 on a CPU)")
    parser.add_argument("--out", help="working folder (default: a new temporary one)")
    parser.add_argument("--summary", help="also write the JSON summary here (after every stage)")
    parser.add_argument(
        "--budget-s",
        type=float,
        help="skip stages that would run past this (default: 450 on a GPU, "
        "1,800 on a CPU); a skipped stage fails the run",
    )
    parser.add_argument("--peak-tflops", type=float, help="the card's dense bf16 peak, where the name table lacks it")
    parser.add_argument("--stages", help="comma-separated stages to run after build (default: all), e.g. decode_step")
    args = parser.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available()
    scale = parts.Scale.for_device(cuda)
    budget = args.budget_s if args.budget_s is not None else (450.0 if cuda else 1800.0)
    layers = args.layers or (None if cuda else 2)
    work = Path(args.out or tempfile.mkdtemp(prefix="bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary: dict = {
        "environment": parts.environment(cuda, args.peak_tflops),
        "shape": args.shape,
        "layers": layers or "all",
        "scale": scale.__dict__,
        "stages": {},
        "checks": {},
        "targets": {},
    }

    def save() -> None:
        summary["seconds"] = round(time.perf_counter() - started, 1)
        if args.summary:
            Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    stages = [
        ("build", lambda: parts.build(work, args.shape, layers, cuda), 60),
        ("drift", lambda: parts.drift(work, summary, scale), 90),
        ("generation", lambda: parts.generation(work, summary, scale), 90),
        ("grpo_step", lambda: parts.grpo_step(work, summary, scale), 90),
        ("full_evaluation_estimate", lambda: parts.full_evaluation_estimate(summary), 0),
        # Compiling a 4B model's decode step takes a while (estimated, not yet measured on a card).
        ("decode_step", lambda: gpu_decode.decode_step(work, summary, *gpu_decode.scale(cuda)), 120),
        # Packed, flex attention, compiled layers: last: it takes what budget the stages above
        # left; mostly compilation (estimated 2-4 minutes on an H200, not yet measured there).
        (
            "drift_layouts",
            lambda: gpu_drift.drift_layouts(work, summary, scale, budget - (time.perf_counter() - started)),
            60,
        ),
    ]
    if args.stages:
        wanted = {"build", *(name.strip() for name in args.stages.split(","))}
        unknown = wanted - {name for name, _, _ in stages}
        if unknown:
            parser.error(f"--stages: unknown {', '.join(sorted(unknown))}")
        stages = [stage for stage in stages if stage[0] in wanted]
    for name, run, needs in stages:
        left = budget - (time.perf_counter() - started)
        if left < needs:
            summary["stages"][name] = {"skipped": f"{left:.0f} s left of --budget-s, the stage needs about {needs} s"}
            summary["checks"][f"{name}: ran within the budget"] = False
            save()
            continue
        stage_started = time.perf_counter()
        try:
            result = run()
        except Exception as error:  # a stage's failure is a finding; the next stage still runs
            summary["stages"][name] = {
                "error": f"{type(error).__name__}: {error}",
                "trace": traceback.format_exc().splitlines()[-6:],
            }
            summary["checks"][f"{name}: ran"] = False
        else:
            summary["stages"][name] = {**result, "stage_seconds": round(time.perf_counter() - stage_started, 1)}
        if name == "build" and "error" in summary["stages"][name]:
            break
        save()
    parts.judge(summary)
    gpu_decode.judge(summary)
    gpu_drift.judge(summary)
    summary["passed"] = all(summary["checks"].values()) and bool(summary["checks"])
    save()
    print(json.dumps(summary, indent=2))
    for check, passed in summary["checks"].items():
        if not passed:
            print(f"bench/gpu.py: check failed: {check}", file=sys.stderr)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
