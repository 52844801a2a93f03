"""Processes, devices and precision of a run, and the batch arithmetic between them."""

from __future__ import annotations

import os
from typing import Any

from alignment_tax.errors import UserError


def world_size() -> int:
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0") or 0) == 0


def device_settings(training: dict[str, Any]) -> dict[str, Any]:
    """``training`` with ``use_cpu: true`` added for a multi-process run on a machine without CUDA.

    Launched as several processes (``WORLD_SIZE`` > 1) where torch sees no GPU, accelerate only
    sets up a CPU process group (gloo) when asked for the CPU; without it every process would
    train alone on the whole data and write the same output folder.
    """
    import torch

    if world_size() > 1 and not torch.cuda.is_available() and not training.get("use_cpu"):
        training = {**training, "use_cpu": True}
    return training


def resolve_precision(precision: str, use_cpu: bool = False) -> str:
    """``bf16``, ``fp16`` or ``fp32``: ``auto`` is bf16 on a GPU that supports it, else fp32.

    bf16 on CPU (TRL's default there) silently runs bf16 autocast: slow, and not what a CPU run
    is for; so it is an error to ask for it, and ``auto`` never chooses it.
    """
    import torch

    on_gpu = torch.cuda.is_available() and not use_cpu
    if precision == "auto":
        return "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16" and not (on_gpu and torch.cuda.is_bf16_supported()):
        raise UserError("precision bf16 needs a GPU with bfloat16 support; use precision auto or fp32 here")
    if precision == "fp16" and not on_gpu:
        raise UserError("precision fp16 needs a GPU; use precision auto or fp32 here")
    return precision


def model_dtype(precision: str) -> str:
    """Weights in bf16 for bf16 runs (LoRA weights stay fp32), fp32 otherwise (fp16 needs fp32 masters)."""
    return "bfloat16" if precision == "bf16" else "float32"


def gradient_accumulation(config: dict[str, Any], default_per_device: int, processes: int) -> int | None:
    """Steps to accumulate so that processes × per-device batch × steps = ``global_batch_size``."""
    training = config["training"]
    target = config.get("global_batch_size")
    if target is None:
        return None
    per_device = int(training.get("per_device_train_batch_size", default_per_device))
    per_step = per_device * processes
    steps, remainder = divmod(int(target), per_step)
    if remainder or steps < 1:
        raise UserError(
            f"global_batch_size {target} is not a multiple of per_device_train_batch_size {per_device} × "
            f"{processes} process(es) = {per_step}; change one of them (or set global_batch_size: null)"
        )
    given = training.get("gradient_accumulation_steps")
    if given is not None and int(given) != steps:
        raise UserError(
            f"training.gradient_accumulation_steps {given} contradicts global_batch_size {target} "
            f"(= {per_device} per device × {processes} process(es) × {steps}); set only one"
        )
    return steps
