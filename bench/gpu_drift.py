"""bench/gpu.py's ``drift_layouts`` stage: the drift pass with its windows packed, compiled, or both.

Every variant runs the product's ``token_drift`` over the same passages as the ``drift`` stage
(which times the padded layout), with the same model-FLOPs count, so MFU and the ratio to the
``drift`` stage's two bare forward passes compare directly. Each is warmed up on the first
passages (for a compiled one: every graph it needs, the adapter on and off, with dynamic shapes)
and its values are compared with the padded pass's before its time counts:

* ``packed``: rows of concatenated windows no longer than the longest window (the product's
  packing, ``--drift-packing on``), SDPA with the mask transformers builds from the positions;
* ``packed_one_row_flex``: one row per batch (the whole token budget, no padding at all) with
  ``flex_attention``, whose block mask skips the blocks between windows that SDPA would compute;
* ``packed_compiled``: ``packed`` with every decoder layer compiled (``torch.compile``, one graph
  for all layers since they share code): fuses the fp32 RMS norms, rotary embeddings and LoRA's
  element-wise work that the profile found between the matrix products. The mask is built
  outside the compiled layers, where transformers' packed-window detection runs eagerly.
"""

from __future__ import annotations

import time
from pathlib import Path

import gpu_parts as parts
import numpy as np
import torch


def _timed(run) -> tuple[float, object]:
    parts._sync()
    start = time.perf_counter()
    result = run()
    parts._sync()
    return time.perf_counter() - start, result


def _compare(result, reference) -> dict:
    """How far a variant's per-token values are from the padded pass's (same tokens, same order)."""
    if not np.array_equal(result.position, reference.position):
        raise AssertionError("the variant scored other tokens than the padded pass")
    return {
        "nll_max_abs_diff": float(np.abs(result.nll - reference.nll).max()),
        "kl_max_abs_diff": float(np.abs(result.kl - reference.kl).max()),
        "kl_mean_relative_diff": float(abs(result.kl.mean() - reference.kl.mean()) / reference.kl.mean()),
    }


def _compile_layers(model) -> None:
    for layer in model.get_base_model().model.layers:
        layer.compile(dynamic=True)


# What each variant needs, warm-up and compilation included, before it is started (seconds on
# an H200, estimated: the packed pass is the drift stage's again; compiling is the unknown).
NEEDS = {"packed": 30, "packed_one_row_flex": 90, "packed_compiled": 150}


def drift_layouts(work: Path, summary: dict, scale: parts.Scale, seconds_left: float) -> dict:
    """The variants that fit in ``seconds_left``; one that does not is marked skipped."""
    result = _layouts(work, summary, scale, time.perf_counter() + seconds_left)
    parts._reset_peak()  # the model, compiled layers and all, is gone by now
    return result


def _layouts(work: Path, summary: dict, scale: parts.Scale, deadline: float) -> dict:
    from alignment_tax.evaluation.drift import plan_windows, token_drift, tokenize_corpus
    from alignment_tax.evaluation.drift_batches import padding_share, plan_batches

    drift_stage = summary["stages"].get("drift", {})
    if "seconds" not in drift_stage:
        raise RuntimeError("needs the drift stage's padded pass and bare forward passes")
    model, tokenizer = parts._drift_model(work)
    config = model.get_base_model().config
    texts = parts._passages(scale.drift_passages)
    batch = scale.drift_batch
    windows = plan_windows(tokenize_corpus(tokenizer, texts), 2048)
    lengths = [len(w.token_ids) for w in windows]
    order = sorted(range(len(windows)), key=lambda k: -lengths[k])
    longest = max(lengths)
    flops = parts._model_flops(config, windows, 64)
    peak_tflops = summary["environment"].get("peak_bf16_tflops")
    bare_seconds = drift_stage["two_bare_forward_seconds"]
    result: dict = {
        "padding_share": {
            "padded": round(padding_share(lengths, plan_batches(lengths, order, batch), None), 4),
            "packed": round(padding_share(lengths, plan_batches(lengths, order, batch, longest), longest), 4),
            "packed_one_row": round(
                padding_share(lengths, plan_batches(lengths, order, 1, batch * longest), batch * longest), 4
            ),
        },
        "row_tokens": longest,
    }
    # The padded pass again in this process, as the reference the variants' values are compared with.
    reference = token_drift(model, tokenizer, texts, batch_size=batch, packing="off")

    def measure(name: str, rows: int = batch, **settings) -> bool:
        """Time ``token_drift`` with ``rows`` rows a batch and ``settings``; False if skipped."""
        if deadline - time.perf_counter() < NEEDS[name]:
            result[name] = {"skipped": f"less than the {NEEDS[name]} s it needs were left of --budget-s"}
            return False
        # Warm-up: two batch shapes, so that a compiled variant has its dynamic-shape graphs.
        token_drift(model, tokenizer, texts[:batch], batch_size=rows, **settings)
        token_drift(model, tokenizer, texts[-max(1, batch // 2) :], batch_size=rows, **settings)
        model.set_adapter("zero")
        zero = token_drift(model, tokenizer, texts[: scale.control_passages], batch_size=rows, **settings)
        model.set_adapter("default")
        parts._reset_peak()
        seconds, values = _timed(lambda: token_drift(model, tokenizer, texts, batch_size=rows, **settings))
        result[name] = {
            "seconds": round(seconds, 2),
            "mfu": round(flops / seconds / 1e12 / peak_tflops, 3) if peak_tflops else None,
            "time_ratio": round(seconds / bare_seconds, 3),
            "peak_gib": parts._peak_gib(),
            "zero_adapter_kl_max": float(zero.kl.max()),
            "zero_adapter_nll_equal": bool(np.array_equal(zero.nll, zero.base_nll)),
            **_compare(values, reference),
        }
        return True

    stage_started = time.perf_counter()
    measure("packed", packing="on")
    base = model.get_base_model()
    attention = base.config._attn_implementation
    try:
        base.set_attn_implementation("flex_attention")
        # One row holds the whole batch's budget: flex skips the blocks between windows.
        measure("packed_one_row_flex", rows=1, packing="on", row_tokens=batch * longest)
    except Exception as error:  # a finding, not a reason to lose the compiled measurement
        result["packed_one_row_flex"] = {"error": f"{type(error).__name__}: {error}"[:300]}
    finally:
        base.set_attn_implementation(attention)
    compile_started = time.perf_counter()
    if deadline - compile_started >= NEEDS["packed_compiled"]:
        _compile_layers(model)
    if measure("packed_compiled", packing="on"):
        result["packed_compiled"]["compile_and_warm_up_seconds"] = round(
            time.perf_counter() - compile_started - result["packed_compiled"]["seconds"], 1
        )
    result["variants_seconds"] = round(time.perf_counter() - stage_started, 1)
    return result


def judge(summary: dict) -> None:
    """Checks (controls, agreement with the padded pass) and the issue's targets for each variant."""
    stage = summary["stages"].get("drift_layouts", {})
    cuda = torch.cuda.is_available()
    # Against the padded pass: float32 rounding on a CPU; bf16 on a GPU, where other shapes pick
    # other kernels and a product's rounding moves the last of 8 mantissa bits.
    tolerance = 0.01 if cuda else 1e-3
    for name in ("packed", "packed_one_row_flex", "packed_compiled"):
        variant = stage.get(name, {})
        if "seconds" not in variant:
            continue
        summary["checks"][f"drift {name}: zero adapter reads KL exactly 0"] = (
            variant["zero_adapter_kl_max"] == 0.0 and variant["zero_adapter_nll_equal"]
        )
        summary["checks"][f"drift {name}: mean KL within {tolerance:g} of the padded pass's"] = (
            variant["kl_mean_relative_diff"] <= tolerance
        )
        summary["targets"][f"drift {name} time / two bare forwards <= 1.10"] = variant["time_ratio"] <= 1.10
        if variant["mfu"] is not None:
            summary["targets"][f"drift {name} MFU >= 0.40"] = variant["mfu"] >= 0.40
