"""The stages of bench/gpu.py: each returns a JSON-able dict; ``judge`` turns them into checks and targets."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from alignment_tax.data import samples
from alignment_tax.models.tiny import CORPUS_DIR

# Dense bf16 peak of the cards this is likely to meet, TFLOP/s, from the vendors' data sheets.
PEAK_BF16_TFLOPS = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("RTX 4090", 165.2),
)
# One checkpoint's full evaluation: CMRC 2018 dev (questions, passages), the MT test set
# (FLORES+ devtest, the MT task's hub default), the headline test set (CMHG Tibetan, filtered
# as the reference study did), each output at the tasks' cap of 256 tokens.
FULL_EVALUATION = {"cmrc2018": 3219, "bo_zh_mt": 1012, "bo_headline": 621}
CMRC_DEV_PASSAGES = 848
TASK_CAP = 256
_CACHE: dict = {}
# The drift stage times the padded layout, as every earlier run did; `token_drift`'s default
# packs on CUDA, and bench/gpu_drift.py times that and the other layouts against this one.
PADDED = "off"


@dataclass
class Scale:
    drift_passages: int
    drift_batch: int
    control_passages: int
    gen_items: int
    gen_batch: int
    gen_cap: int
    grpo_prompts: int
    grpo_completion: int

    @classmethod
    def for_device(cls, cuda: bool) -> Scale:
        if cuda:  # the paper's GRPO step: 4 prompts × 8 generations of up to 256 tokens
            return cls(256, 16, 8, 60, 32, 128, 4, 256)
        return cls(4, 4, 2, 8, 8, 16, 1, 16)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def environment(cuda: bool, peak_override: float | None) -> dict:
    import peft
    import transformers
    import trl

    info = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
    }
    if not cuda:
        return info
    name = info["device"]
    info["peak_bf16_tflops"] = peak_override or next((tf for key, tf in PEAK_BF16_TFLOPS if key in name), None)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ a
    _sync()
    start = time.perf_counter()
    for _ in range(10):
        a @ a
    _sync()
    info["measured_matmul_tflops"] = round(10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12, 1)
    info["memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def build(work: Path, shape: str, layers: int | None, cuda: bool) -> dict:
    from alignment_tax.models.tiny import build_tiny_model
    from alignment_tax.models.tiny_adapter import build_tiny_adapter

    dtype = "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
    start = time.perf_counter()
    build_tiny_model(work / "base", shape=shape, layers=layers, dtype=dtype, device="cuda" if cuda else None)
    model_seconds = time.perf_counter() - start
    build_tiny_adapter(work / "base", work / "adapter", rank=64, seed=0)
    build_tiny_adapter(work / "base", work / "zero", rank=64, seed=0, zero=True)
    build_tiny_model(work / "embedder", kind="embedder", size="tiny")
    manifest = json.loads((work / "base" / "alignment_tax_tiny.json").read_text(encoding="utf-8"))
    return {
        "dtype": dtype,
        "parameters": manifest["parameters"],
        "layers": manifest["layers"],
        "model_seconds": round(model_seconds, 1),
        "adapters_seconds": round(time.perf_counter() - start - model_seconds, 1),
    }


def _passages(n: int) -> list[str]:
    lines = (CORPUS_DIR / "cmrc_trial.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()][:n]


def _drift_model(work: Path):
    """The base with the random adapter as ``evaluate --adapter`` loads it, and the zero one beside it."""
    from alignment_tax.models.loading import attach_adapter, cast_adapter_to_base_dtype, load_causal_lm

    device = "cuda" if torch.cuda.is_available() else "cpu"
    base, tokenizer = load_causal_lm(str(work / "base"), device, _build_dtype(work))
    model = attach_adapter(base, str(work / "adapter"), str(work / "base"))
    model.load_adapter(str(work / "zero"), adapter_name="zero", autocast_adapter_dtype=False)
    cast_adapter_to_base_dtype(model)
    return model, tokenizer


def _build_dtype(work: Path) -> str:
    return json.loads((work / "base" / "alignment_tax_tiny.json").read_text(encoding="utf-8"))["dtype"]


def linear_params(config) -> int:
    """Weights of one Qwen3 decoder layer's seven projections (q, k, v, o, gate, up, down)."""
    h, i = config.hidden_size, config.intermediate_size
    q, kv = config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim
    return h * q + 2 * h * kv + q * h + 3 * h * i


def lora_params(config, rank: int) -> int:
    """LoRA A and B of rank ``rank`` on one layer's seven projections: rank × (inputs + outputs)."""
    h, i = config.hidden_size, config.intermediate_size
    q, kv = config.num_attention_heads * config.head_dim, config.num_key_value_heads * config.head_dim
    return rank * ((h + q) * 2 + 2 * (h + kv) + 2 * (h + i) + (i + h))


def _model_flops(config, windows, lora_rank: int) -> float:
    """Matrix-product FLOPs of the drift pass: candidate (with LoRA) and base, the head on scored tokens."""
    h, L, v = config.hidden_size, config.num_hidden_layers, config.vocab_size
    q = config.num_attention_heads * config.head_dim
    linear, lora = linear_params(config), lora_params(config, lora_rank)
    total = 0.0
    for w in windows:
        n, scored = len(w.token_ids), w.n_scored
        attention = 4 * L * q * n * (n + 1) / 2
        one_pass = 2 * n * L * linear + 2 * scored * v * h + attention
        total += 2 * one_pass + 2 * n * L * lora
    return total


def drift(work: Path, summary: dict, scale: Scale) -> dict:
    from alignment_tax.evaluation.drift import _batch_tensors, plan_windows, token_drift, tokenize_corpus

    model, tokenizer = _drift_model(work)
    config = model.get_base_model().config
    texts = _passages(scale.drift_passages)
    model.set_adapter("zero")
    zero = token_drift(model, tokenizer, texts[: scale.control_passages], batch_size=scale.drift_batch, packing=PADDED)
    model.set_adapter("default")
    token_drift(model, tokenizer, texts[: scale.drift_batch], batch_size=scale.drift_batch, packing=PADDED)  # warm-up
    _reset_peak()
    _sync()
    start = time.perf_counter()
    result = token_drift(model, tokenizer, texts, batch_size=scale.drift_batch, packing=PADDED)
    _sync()
    seconds = time.perf_counter() - start
    drift_peak = _peak_gib()

    windows = plan_windows(tokenize_corpus(tokenizer, texts), 2048)
    order = sorted(range(len(windows)), key=lambda k: -len(windows[k].token_ids))
    batches = [[windows[k] for k in order[s : s + scale.drift_batch]] for s in range(0, len(order), scale.drift_batch)]
    device = next(model.parameters()).device.type
    bare_seconds, bare_peak = 0.0, None
    with torch.no_grad():
        for batch in batches:
            ids, mask, positions, _ = _batch_tensors(batch, tokenizer.pad_token_id, "right", device)
            _reset_peak()
            _sync()
            begin = time.perf_counter()
            with model.disable_adapter():
                _ = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
            _sync()
            peak = _peak_gib()
            bare_peak = max(bare_peak or 0.0, peak) if peak is not None else None
            _ = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
            _sync()
            bare_seconds += time.perf_counter() - begin
    tokens = sum(len(w.token_ids) for w in windows)
    flops = _model_flops(config, windows, 64)
    peak_tflops = summary["environment"].get("peak_bf16_tflops")
    # evaluate computes LoRA in the base's dtype (models.loading.attach_adapter); PEFT's default
    # keeps it in fp32, as trained adapters are saved. What that would cost, measured:
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            parameter.data = parameter.data.float()
    _sync()
    start = time.perf_counter()
    token_drift(model, tokenizer, texts, batch_size=scale.drift_batch, packing=PADDED)
    _sync()
    lora_fp32_seconds = time.perf_counter() - start
    _CACHE["drift_tokens_per_s"] = tokens / seconds
    _CACHE["tokens_per_passage"] = tokens / len(texts)
    del model
    _reset_peak()
    return {
        "passages": len(texts),
        "tokens": tokens,
        "scored_tokens": result.n_tokens,
        "batch_size": scale.drift_batch,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "model_tflops_per_s": round(flops / seconds / 1e12, 2),
        "mfu": round(flops / seconds / 1e12 / peak_tflops, 3) if peak_tflops else None,
        "seconds_lora_fp32": round(lora_fp32_seconds, 2),
        "mfu_lora_fp32": round(flops / lora_fp32_seconds / 1e12 / peak_tflops, 3) if peak_tflops else None,
        "two_bare_forward_seconds": round(bare_seconds, 2),
        "time_ratio": round(seconds / bare_seconds, 3),
        "peak_gib": drift_peak,
        "bare_forward_peak_gib": bare_peak,
        "memory_ratio": round(drift_peak / bare_peak, 3) if drift_peak and bare_peak else None,
        "kl_mean": float(result.kl.mean()),
        "nll_mean": float(result.nll.mean()),
        "finite": bool(np.isfinite(result.kl).all() and np.isfinite(result.nll).all()),
        "zero_adapter_kl_max": float(zero.kl.max()),
        "zero_adapter_nll_equal": bool(np.array_equal(zero.nll, zero.base_nll)),
        "device": device,
        "dtype": _build_dtype(work),
        "packing": PADDED,
    }


def _cmrc_prompts(tokenizer, n: int) -> list[str]:
    from evaluate_throughput import cmrc_prompts

    from alignment_tax.tasks.loading import load_task_docs

    return cmrc_prompts(tokenizer, load_task_docs("cmrc2018", {"data": samples.evaluation_data()})[:n])


def generation(work: Path, summary: dict, scale: Scale) -> dict:
    from evaluate_throughput import GenerateCounter, bare_generate

    from alignment_tax.evaluation.evaluate import EvaluateOptions, evaluate
    from alignment_tax.models import loading

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = loading.load_causal_lm(str(work / "base"), device, _build_dtype(work))
    prompts = _cmrc_prompts(tokenizer, scale.gen_items)
    bare_generate(model, tokenizer, prompts[: scale.gen_batch], scale.gen_batch, 4)  # warm-up
    _sync()
    with GenerateCounter(model, tokenizer.pad_token_id) as count:
        start = time.perf_counter()
        bare = bare_generate(model, tokenizer, prompts, scale.gen_batch, scale.gen_cap)
        _sync()
        bare_seconds = time.perf_counter() - start
    tokens, steps = count.tokens, count.steps
    options = EvaluateOptions(
        tasks=["cmrc2018"],
        output=str(work / "eval"),
        model=str(work / "base"),
        limit=len(prompts),
        batch_size=scale.gen_batch,
        device=device,
        dtype=_build_dtype(work),
        data=samples.evaluation_data(),
        max_gen_toks={"cmrc2018": scale.gen_cap},
    )
    with mock.patch.object(loading, "load_causal_lm", return_value=(model, tokenizer)):
        start = time.perf_counter()
        results = evaluate(options)
        _sync()
        evaluate_seconds = time.perf_counter() - start
    items = [json.loads(line) for line in (work / "eval" / "samples" / "cmrc2018.jsonl").read_text().splitlines()]
    same = sum(item["output"] == out.strip() for item, out in zip(items, bare))
    _CACHE["decode_step_seconds"] = evaluate_seconds / steps  # the same batches and cap as the bare loop
    del model
    _reset_peak()
    return {
        "prompts": len(prompts),
        "batch_size": scale.gen_batch,
        "cap": scale.gen_cap,
        "generated_tokens": tokens,
        "bare_seconds": round(bare_seconds, 2),
        "bare_tokens_per_s": round(tokens / bare_seconds, 1),
        "evaluate_seconds": round(evaluate_seconds, 2),
        "evaluate_tokens_per_s": round(tokens / evaluate_seconds, 1),
        "ratio_evaluate_bare": round(evaluate_seconds / bare_seconds, 3),
        "outputs_identical": f"{same}/{len(items)}",
        "decode_step_ms": round(1000 * bare_seconds / steps, 2),
        "evaluate_decode_step_ms": round(1000 * evaluate_seconds / steps, 2),
        "evaluate_device": results["config"]["device"],
        "evaluate_dtype": results["config"]["dtype"],
        "vllm": _vllm_probe(),
    }


def _vllm_probe() -> str:
    try:
        import vllm  # noqa: F401
    except Exception as error:  # not installable from a bare image without network
        return f"not measured: vllm does not import here ({type(error).__name__})"
    return f"vllm {vllm.__version__} imports; its engine is not timed by this suite yet"


def grpo_step(work: Path, summary: dict, scale: Scale) -> dict:
    from alignment_tax.trainers import load_config, train

    generations = 8
    overrides = [
        "data.skip=0",
        f"data.limit={scale.grpo_prompts}",
        f"global_batch_size={scale.grpo_prompts * generations}",
        f"training.per_device_train_batch_size={min(16, scale.grpo_prompts * generations)}",
        f"training.max_completion_length={scale.grpo_completion}",
        "reward.tau=0.5",
        "training.save_steps=1000",
    ]
    config = load_config("grpo", overrides=overrides, max_steps=1)
    _reset_peak()
    start = time.perf_counter()
    train(
        config,
        model=str(work / "base"),
        adapter=str(work / "adapter"),
        embedder=str(work / "embedder"),
        train_data=str(samples.MT_TRAIN),
        output=str(work / "grpo"),
    )
    seconds = time.perf_counter() - start
    log = [json.loads(line) for line in (work / "grpo" / "train_log.jsonl").read_text().splitlines()]
    step = next((e for e in log if "step_time" in e), {})
    record = json.loads((work / "grpo" / "train_config.json").read_text())
    return {
        "completions": scale.grpo_prompts * generations,
        "max_completion_length": scale.grpo_completion,
        "lora_rank": config["lora"]["r"],
        "beta": config["training"]["beta"],
        "precision": record["resolved"]["precision"],
        "step_seconds": step.get("step_time"),
        "train_call_seconds": round(seconds, 1),
        "peak_gib": _peak_gib(),
        "loss": step.get("loss"),
        "completion_mean_length": step.get("completions/mean_length"),
        "adapter_written": (work / "grpo" / "adapter" / "adapter_model.safetensors").is_file(),
    }


def full_evaluation_estimate(summary: dict) -> dict:
    step, drift_rate = _CACHE.get("decode_step_seconds"), _CACHE.get("drift_tokens_per_s")
    if step is None or drift_rate is None:
        raise RuntimeError("needs the drift and generation stages' rates")
    batch = summary["scale"]["gen_batch"]
    seconds = {task: math.ceil(n / batch) * TASK_CAP * step for task, n in FULL_EVALUATION.items()}
    drift_tokens = CMRC_DEV_PASSAGES * _CACHE["tokens_per_passage"]
    seconds["drift"] = drift_tokens / drift_rate
    return {
        "items": FULL_EVALUATION,
        "cap_tokens": TASK_CAP,
        "batch_size": batch,
        "drift_tokens": round(drift_tokens),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "total_minutes": round(sum(seconds.values()) / 60, 1),
        "assumes": "hf engine, every output runs to the cap (an upper bound), evaluate's decode step time as measured "
        "at this batch size; drift tokens counted with the package's tokenizer (Qwen's splits Tibetan finer)",
    }


def judge(summary: dict) -> None:
    """Checks must pass (exit 1 otherwise); targets are performance goals, reported met or missed."""
    cuda = torch.cuda.is_available()
    stages, checks, targets = summary["stages"], summary["checks"], summary["targets"]
    dtype = "bfloat16" if cuda else "float32"
    with contextlib.suppress(KeyError):
        checks["build: model in " + dtype] = stages["build"]["dtype"] == dtype
    d = stages.get("drift", {})
    if "tokens" in d:
        checks["drift: finite values"] = d["finite"]
        checks["drift: zero adapter reads KL exactly 0"] = (
            d["zero_adapter_kl_max"] == 0.0 and d["zero_adapter_nll_equal"]
        )
        checks["drift: random rank-64 adapter reads KL > 0"] = d["kl_mean"] > 0
        targets["drift time / two bare forwards <= 1.10"] = d["time_ratio"] <= 1.10
        if d["mfu"] is not None:
            targets["drift MFU >= 0.40"] = d["mfu"] >= 0.40
        if d["memory_ratio"] is not None:
            targets["drift peak memory / one bare forward <= 1.15"] = d["memory_ratio"] <= 1.15
    g = stages.get("generation", {})
    if "generated_tokens" in g:
        checks["generation: tokens generated"] = g["generated_tokens"] > 0
        checks["generation: evaluate on " + ("cuda" if cuda else "cpu")] = g["evaluate_device"] == (
            "cuda" if cuda else "cpu"
        )
        targets["evaluate / bare generate <= 1.2"] = g["ratio_evaluate_bare"] <= 1.2
    s = stages.get("grpo_step", {})
    if "step_seconds" in s:
        checks["grpo: one step logged with a finite loss"] = s["loss"] is not None and math.isfinite(s["loss"])
        checks["grpo: adapter written"] = s["adapter_written"]
        checks["grpo: precision " + ("bf16" if cuda else "fp32")] = s["precision"] == ("bf16" if cuda else "fp32")
