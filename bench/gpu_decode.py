"""The decode-step stage of bench/gpu.py: what one generation step of the candidate costs, three ways.

On the suite's model (Qwen3-4B's widths, bf16 on a GPU) with its random rank-64 LoRA on all seven
projections, a batch of ``batch`` prompts of ``prompt_tokens`` random ids, greedy, ``new_tokens``
new tokens (``min_new_tokens`` too, so no row stops early), one step is timed per generated token
by a logits processor that synchronises the device and reads the clock (prefill and the first
steps after it are left out; the median over the rest is reported):

* ``unmerged``: PEFT's LoRA layers, as the hf engine generated before it folded adapters;
* ``merged``: the adapter folded in by :func:`alignment_tax.models.merged_adapter.merged_adapter`,
  the hf engine's default (what folding in and restoring the weights cost is timed too);
* ``merged_static_compiled``: the same, with ``cache_implementation="static"``; on a GPU
  transformers then compiles the forward itself (``GenerativePreTrainedModel.get_compiled_call``,
  default ``CompileConfig``: inductor, ``reduce-overhead``, CUDA graphs). Each variant runs once
  untimed first, so compilation and graph capture are not in the steps. Not run on a CPU, where
  transformers does not compile and a static cache alone was slower (../shared/docs/stack-notes.md).

Greedy tokens of the three are compared row by row and reported, not checked: in bf16 a folded
product rounds differently. The target (``judge``) is the compiled step at most 15 ms.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

STEP_TARGET_MS = 15.0


def scale(cuda: bool) -> tuple[int, int, int]:
    """Batch, prompt tokens, new tokens: the issue's batch 32 on a GPU; a token run on a CPU."""
    return (32, 256, 64) if cuda else (2, 16, 6)


class StepClock:
    """A logits processor that only reads the clock, after the device has finished the step."""

    def __init__(self):
        self.times: list[float] = []

    def __call__(self, input_ids, scores):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        return scores

    def step_ms(self) -> float:
        # The first clock reading follows the prefill; the first step after it (allocations) is left out too.
        steps = [b - a for a, b in zip(self.times, self.times[1:])][1:]
        return round(1000 * statistics.median(steps), 2)


def _generate(model, inputs: dict, new_tokens: int, pad_id: int, **extra) -> tuple[torch.Tensor, float]:
    from transformers import LogitsProcessorList

    clock = StepClock()
    with torch.no_grad():
        out = model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
            logits_processor=LogitsProcessorList([clock]),
            **extra,
        )
    return out[:, inputs["input_ids"].shape[1] :], clock.step_ms()


def decode_step(work: Path, summary: dict, batch: int, prompt_tokens: int, new_tokens: int) -> dict:
    from alignment_tax.models.loading import attach_adapter, load_causal_lm
    from alignment_tax.models.merged_adapter import merge_blocker, merged_adapter

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    dtype = summary["stages"]["build"]["dtype"]
    base, tokenizer = load_causal_lm(str(work / "base"), device, dtype)
    model = attach_adapter(base, str(work / "adapter"), str(work / "base"))
    blocker = merge_blocker(model)
    if blocker is not None:
        raise RuntimeError(f"the suite's adapter cannot be folded in: {blocker}")
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, len(tokenizer), (batch, prompt_tokens), generator=generator).to(device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    pad = tokenizer.pad_token_id
    result: dict = {"batch": batch, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "dtype": dtype}

    _generate(model, inputs, new_tokens, pad)  # warm-up
    unmerged, result["unmerged_step_ms"] = _generate(model, inputs, new_tokens, pad)
    start = time.perf_counter()
    with merged_adapter(model):
        if cuda:
            torch.cuda.synchronize()
        result["fold_seconds"] = round(time.perf_counter() - start, 2)
        _generate(model, inputs, new_tokens, pad)
        merged, result["merged_step_ms"] = _generate(model, inputs, new_tokens, pad)
        if cuda:
            try:
                start = time.perf_counter()
                _generate(model, inputs, new_tokens, pad, cache_implementation="static")  # compiles, captures
                result["compile_seconds"] = round(time.perf_counter() - start, 1)
                static, result["merged_static_compiled_step_ms"] = _generate(
                    model, inputs, new_tokens, pad, cache_implementation="static"
                )
                result["static_compiled_rows_identical_to_merged"] = f"{_same_rows(static, merged)}/{batch}"
            except Exception as error:  # a failed compile is a finding; the other two numbers stand
                result["merged_static_compiled_error"] = f"{type(error).__name__}: {error}"[:500]
        start = time.perf_counter()
    result["restore_seconds"] = round(time.perf_counter() - start, 2)
    result["merged_rows_identical_to_unmerged"] = f"{_same_rows(merged, unmerged)}/{batch}"
    # One step's weights read once: the floor a step cannot beat on this card.
    weight_bytes = sum(p.numel() * p.element_size() for p in model.get_base_model().parameters())
    result["weights_gib"] = round(weight_bytes / 2**30, 2)
    del model, base
    return result


def _same_rows(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a == b).all(dim=1).sum())


def judge(summary: dict) -> None:
    """Checks and targets of this stage (bench/gpu.py's ``judge`` covers the others)."""
    d = summary["stages"].get("decode_step", {})
    if "merged_step_ms" not in d:
        return
    summary["checks"]["decode step: a step timed each way"] = d["merged_step_ms"] > 0 and d["unmerged_step_ms"] > 0
    # Timings are targets, not checks: on a shared CPU two close numbers can swap places.
    summary["targets"]["decode step: folded adapter faster than unmerged"] = d["merged_step_ms"] < d["unmerged_step_ms"]
    if torch.cuda.is_available():
        step = d.get("merged_static_compiled_step_ms")
        summary["targets"][f"decode step, merged + static cache + compiled <= {STEP_TARGET_MS:g} ms"] = (
            step is not None and step <= STEP_TARGET_MS
        )
