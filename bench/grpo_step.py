"""One GRPO optimiser step at Qwen3 width on a CPU: time, peak memory, where it goes, and the arithmetic.

    python bench/grpo_step.py [--layers 2,4] [--completion 32] [--prompts 1]

On the qwen3-0.6b shape (hidden 1,024, 151,936-token vocabulary) with 2 and then 4 decoder
layers, fp32, a random rank-64 adapter on all seven projections as the starting (cold-start)
adapter, β 0.04 (so a frozen copy of that adapter is the reference), 8 generations per prompt,
τ fixed (no calibration), through the package's own GRPO trainer (``alignment-tax train``'s
code): each depth in a fresh process that samples its resident memory every millisecond.

Printed per depth: the step's time (TRL's ``step_time``), resident memory after the trainer is
built and at the step's peak, and the arithmetic: policy weights (base + LoRA), LoRA gradients
and Adam's two moments, the reference adapter copy, and the step's largest transient, the
log-probabilities' logits for one micro-batch (TRL 1.16 asks transformers for a fused LM head,
``fused_lm_head=True``; the arithmetic bounds it by batch × positions × vocabulary × 4 bytes).
The 2- and 4-layer measurements give a per-layer and a fixed cost; the arithmetic's per-layer
cost is checked against the measured one, then extended to 28 layers (Qwen3-0.6B) on a CPU and
to Qwen3-4B (36 layers, bf16 weights, fp32 LoRA and Adam) on a GPU at the paper's batch, where
``bench/gpu.py`` measured the real step (11.4 GiB on an H200) to check it against.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

GIB = 2**30
RANK = 64


def counts(shape: str, layers: int) -> dict[str, int]:
    from gpu_parts import linear_params, lora_params

    from alignment_tax.models.qwen3_shapes import shaped_config

    config = shaped_config(shape, layers, {"eos_token_id": 2, "pad_token_id": 0, "bos_token_id": 0})
    h, v = config.hidden_size, config.vocab_size
    per_layer = linear_params(config) + 2 * h + 2 * config.head_dim  # the projections and four norms
    lora = lora_params(config, RANK)
    return {
        "base": v * h + layers * per_layer + h,
        "lora": layers * lora,
        "base_per_layer": per_layer,
        "lora_per_layer": lora,
        "vocab": v,
    }


def arithmetic(shape: str, layers: int, weight_bytes: int, batch: int, positions: int) -> dict[str, float]:
    """Bytes of the step's named parts (LoRA, its gradients, Adam and the reference adapter in fp32)."""
    c = counts(shape, layers)
    return {
        "policy_weights": c["base"] * weight_bytes + c["lora"] * 4,
        "lora_grads_and_adam": c["lora"] * 4 * 3,
        "reference_adapter": c["lora"] * 4,
        "logits_one_micro_batch": batch * positions * c["vocab"] * 4,
    }


def measure(work: Path, layers: int, completion: int, prompts: int) -> dict:
    from drift import PeakMemory, resident_bytes

    from alignment_tax.data import samples
    from alignment_tax.models.tiny import build_tiny_model
    from alignment_tax.models.tiny_adapter import build_tiny_adapter
    from alignment_tax.trainers import load_config
    from alignment_tax.trainers.grpo import build_grpo
    from alignment_tax.trainers.sft import finish

    base, adapter, embedder = work / f"base{layers}", work / f"adapter{layers}", work / "embedder"
    if not (base / "config.json").is_file():
        build_tiny_model(base, shape="qwen3-0.6b", layers=layers)
        build_tiny_adapter(base, adapter, rank=RANK, seed=0)
    if not (embedder / "modules.json").is_file():
        build_tiny_model(embedder, kind="embedder", size="tiny")
    completions = prompts * 8
    overrides = [
        "data.skip=0",
        f"data.limit={prompts}",
        f"global_batch_size={completions}",
        f"training.per_device_train_batch_size={completions}",
        f"training.max_completion_length={completion}",
        "reward.tau=0.5",
        "training.save_strategy=no",
        "training.report_to=none",
        "training.logging_steps=1",
        "training.dataloader_pin_memory=false",
        "training.activation_checkpointing=false",
    ]
    config = load_config("grpo", overrides=overrides, max_steps=1)
    started = resident_bytes()
    built = build_grpo(
        config,
        model=str(base),
        adapter=str(adapter),
        train_data=str(samples.MT_TRAIN),
        output=str(work / f"grpo{layers}"),
        embedder=str(embedder),
    )
    after_build = resident_bytes()
    begin = time.perf_counter()
    with PeakMemory() as memory:
        finish(built)
    seconds = time.perf_counter() - begin
    log = [json.loads(line) for line in (work / f"grpo{layers}" / "train_log.jsonl").read_text().splitlines()]
    step = next((entry for entry in log if "step_time" in entry), {})
    prompt_tokens = max(
        len(
            built.tokenizer.apply_chat_template(
                e["prompt"], tokenize=True, add_generation_prompt=True, return_dict=False
            )
        )
        for e in built.data.examples
    )
    return {
        "layers": layers,
        "step_seconds": step.get("step_time"),
        "finish_seconds": round(seconds, 1),
        "resident_before_build": started,
        "resident_after_build": after_build,
        "peak": memory.peak,
        "completions": completions,
        "completion_length": step.get("completions/mean_length"),
        "positions": prompt_tokens + completion,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="2,4")
    parser.add_argument("--completion", type=int, default=32, help="max_completion_length (the paper: 256)")
    parser.add_argument("--prompts", type=int, default=1, help="prompts per step, 8 generations each (the paper: 4)")
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-grpo-"))
    if args.child:
        print(json.dumps(measure(work, args.child, args.completion, args.prompts)))
        return
    measured = {}
    for layers in (int(x) for x in args.layers.split(",")):
        command = [
            sys.executable,
            __file__,
            "--child",
            str(layers),
            "--work",
            str(work),
            "--completion",
            str(args.completion),
            "--prompts",
            str(args.prompts),
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        measured[layers] = json.loads(output)
    report(measured)


def report(measured: dict[int, dict]) -> None:
    summary: dict = {"measured": measured, "arithmetic": {}}
    print("qwen3-0.6b shape, fp32, LoRA r64 on all projections, 8 generations, β 0.04 (reference: the adapter's copy)")
    print(f"{'layers':>6} {'step s':>8} {'after build GiB':>16} {'peak GiB':>9} {'step growth GiB':>16}")
    for layers, m in measured.items():
        print(
            f"{layers:>6} {m['step_seconds']:>8.1f} {m['resident_after_build'] / GIB:>16.2f} {m['peak'] / GIB:>9.2f} "
            f"{(m['peak'] - m['resident_after_build']) / GIB:>16.2f}"
        )
    depths = sorted(measured)
    if len(depths) >= 2:
        low, high = measured[depths[0]], measured[depths[-1]]
        span = depths[-1] - depths[0]
        per_layer_peak = (high["peak"] - low["peak"]) / span
        per_layer_time = (high["step_seconds"] - low["step_seconds"]) / span
        parts = {L: arithmetic("qwen3-0.6b", L, 4, low["completions"], low["positions"]) for L in depths}
        predicted_per_layer = (sum(parts[depths[-1]].values()) - sum(parts[depths[0]].values())) / span
        print(f"\nper layer, measured: peak {per_layer_peak / 2**20:.0f} MiB, step {per_layer_time:.2f} s")
        print(
            f"per layer, arithmetic (weights, LoRA state, reference; activations not counted): {predicted_per_layer / 2**20:.0f} MiB;"
            " the rest is the layer's activations kept for the backward pass (checkpointing is off on a CPU)"
        )
        tokens = low["completions"] * low["positions"]
        activations = per_layer_peak - predicted_per_layer
        print(
            f"the difference, {activations / 2**20:.0f} MiB per layer over {tokens} tokens (8 completions × {low['positions']}"
            f" positions): {activations / tokens / 1024:.0f} KiB of fp32 activations per token and layer"
        )
        fixed = low["peak"] - per_layer_peak * depths[0]
        for layers in (28,):
            estimate = fixed + per_layer_peak * layers
            print(
                f"qwen3-0.6b at {layers} layers on this CPU, fitted from the measurements: peak ≈ {estimate / GIB:.1f} GiB, "
                f"step ≈ {low['step_seconds'] + per_layer_time * (layers - depths[0]):.0f} s"
            )
            summary["arithmetic"][f"qwen3-0.6b_{layers}_cpu_peak_gib"] = round(estimate / GIB, 2)
        for name, part in parts[depths[0]].items():
            summary["arithmetic"][f"{name}_{depths[0]}_layers_gib"] = round(part / GIB, 3)
        summary["per_layer"] = {
            "measured_peak_mib": round(per_layer_peak / 2**20),
            "arithmetic_mib": round(predicted_per_layer / 2**20),
            "activation_kib_per_token": round(activations / tokens / 1024),
            "measured_step_seconds": round(per_layer_time, 2),
        }
    gpu = arithmetic("qwen3-4b", 36, 2, 16, 100 + 256)
    print(
        "\nQwen3-4B, 36 layers, bf16 weights, the paper's micro-batch (16 completions of ≤ 256 tokens after a ≤ 100-token prompt):"
    )
    for name, value in gpu.items():
        print(f"  {name}: {value / GIB:.2f} GiB")
    held = sum(value for name, value in gpu.items() if name != "logits_one_micro_batch")
    print(
        f"  weights and LoRA state together: {held / GIB:.2f} GiB; with the logits bound {(held + gpu['logits_one_micro_batch']) / GIB:.2f} GiB."
        "\n  bench/gpu.py measured the step's peak at 11.43 GiB on an H200 (activation checkpointing on): about 1.5 GiB"
        " over the held parts, well under the logits bound, since TRL 1.16 computes log-probs through a fused head"
    )
    summary["arithmetic"]["qwen3-4b_36_bf16_gib"] = {k: round(v / GIB, 2) for k, v in gpu.items()}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
