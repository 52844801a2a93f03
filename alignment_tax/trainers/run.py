"""What every training run shares: its folder, precision, batch arithmetic, resume and records.

A run's output folder::

    OUTPUT/
      adapter/             the LoRA adapter (SFT, GRPO) and tokenizer: `evaluate --adapter OUTPUT/adapter`
      embedder/            the sentence-transformers model (--method embedder)
      train_config.json    the effective configuration: ours (resolved) and the library's full
                           config dict, defaults included, plus data hash, versions, τ, timing
      train_log.jsonl      the trainer's log_history, one entry a line (rewards, KL, loss, drift, …)
      checkpoints/         checkpoint-N folders (model, optimizer, scheduler, RNG and trainer state)

Resuming is automatic: when ``OUTPUT/checkpoints`` holds a checkpoint, training continues from
the last complete one (its step count, optimizer and scheduler) provided the configuration is the
same up to the keys a longer run may change (``training.max_steps``, ``training.num_train_epochs``,
logging and saving); otherwise the run stops with an error naming the keys that differ. A
checkpoint cut short by an interruption is renamed ``incomplete-checkpoint-N`` and skipped
(:mod:`~alignment_tax.trainers.checkpoints`). ``train_loss`` in the record, the summary and the
log's last entry is the whole run's, across resumes (``train_loss_this_session`` beside it).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.paths import check_output_folder

CONFIG_FILE = "train_config.json"
LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def embedder(self) -> Path:
        return self.root / "embedder"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def log(self) -> Path:
        return self.root / LOG_FILE


def prepare_output(output: str | os.PathLike) -> RunPaths:
    root = check_output_folder(output, "--output")  # a file, or no write access, fails before any loading
    root.mkdir(parents=True, exist_ok=True)
    return RunPaths(root)


def last_checkpoint(paths: RunPaths) -> str | None:
    """The newest complete ``checkpoint-N`` folder under ``OUTPUT/checkpoints``, or None.

    Incomplete ones (a run killed while saving) are set aside, saying so in one line.
    """
    from alignment_tax.trainers.checkpoints import resume_point

    return resume_point(paths.checkpoints, main_process=is_main_process())


def previous_record(paths: RunPaths) -> dict[str, Any] | None:
    if not paths.config.is_file():
        return None
    try:
        return json.loads(paths.config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def check_resumable(paths: RunPaths, config: dict[str, Any], checkpoint: str | None) -> dict[str, Any] | None:
    """The previous run's record when resuming; an error when its configuration differs."""
    if checkpoint is None:
        return None
    from alignment_tax.trainers.config import changed_keys

    record = previous_record(paths)
    if record is None or "config" not in record:
        return None
    old, new = dict(record["config"]), dict(config)
    changed = changed_keys(old, new)
    if changed:
        raise UserError(
            f"{paths.root} holds a run with a different configuration ({', '.join(changed[:8])} differ); "
            f"resume it with the same settings, or choose a new --output"
        )
    return record


def check_same_inputs(record: dict[str, Any] | None, paths: RunPaths, sha256: str, **inputs: Any) -> None:
    """When resuming, the data (by hash) and the model, adapter and embedder must be the run's own."""
    if record is None:
        return
    before = (record.get("train_data") or {}).get("sha256")
    if before and before != sha256:
        raise UserError(
            f"{paths.root} holds a run trained on other data (sha256 {before[:12]}…, now {sha256[:12]}…); "
            "resume it with the same --train-data, or choose a new --output"
        )
    for key, value in inputs.items():
        if key in record and str(record[key]) != str(value):
            flag = {"adapter_init": "--adapter", "model": "--model", "embedder": "--embedder"}.get(key, key)
            raise UserError(
                f"{paths.root} holds a run started with {flag} {record[key]}, not {value}; "
                "resume it with the same inputs, or choose a new --output"
            )


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


def make_training_args(cls: type, kwargs: dict[str, Any]) -> Any:
    """``cls(**kwargs)``, with the library's own complaints turned into one-line UserErrors."""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as error:
        text = " ".join(str(error).split())
        raise UserError(f"invalid training settings for {cls.__name__}: {text}") from error


def args_dict(args: Any) -> dict[str, Any]:
    """The library config's full dict (every default included), JSON-safe."""
    raw = args.to_dict()
    return json.loads(json.dumps(raw, default=str))


def write_record(paths: RunPaths, record: dict[str, Any]) -> None:
    if not is_main_process():
        return
    paths.config.write_text(json.dumps(record, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def base_record(method: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    from alignment_tax.evaluation.provenance import now, versions

    record = {
        "method": method,
        "status": "running",
        "started": now(),
        "finished": None,
        "command": sys.argv,
        "world_size": world_size(),
        "config": config,  # as requested (τ may read "auto"; its value is under "resolved")
        "resolved": {},
        "versions": versions(),
    }
    record.update(extra)
    return record


def finish_record(record: dict[str, Any], trainer: Any) -> dict[str, Any]:
    from alignment_tax.evaluation.provenance import now

    record["status"] = "finished"
    record["finished"] = now()
    record["global_step"] = trainer.state.global_step
    record["epoch"] = trainer.state.epoch
    record.update(final_losses(trainer.state.log_history))
    return record


def final_losses(history: list[dict[str, Any]]) -> dict[str, Any]:
    """``train_loss`` (whole run, across resumes) and ``train_loss_this_session`` from the last summary entry."""
    finals = [entry for entry in history if "train_loss" in entry]
    if not finals:
        return {"train_loss": None, "train_loss_this_session": None}
    final = finals[-1]
    return {"train_loss": final["train_loss"], "train_loss_this_session": final.get("train_loss_this_session")}


def load_lm_for_training(model: str | None, adapter: str | None, precision: str, padding_side: str):
    """The base LM and tokenizer (fp32 or bf16 weights, on CPU; the trainer places them), and the base's name."""
    from alignment_tax.models.loading import adapter_base, load_causal_lm

    if model is None and adapter is None:
        raise UserError("give --model (the base model), and --adapter to continue from an adapter")
    name = model or adapter_base(adapter)
    if adapter is not None:
        adapter_base(adapter)  # a missing or malformed adapter folder fails before the model loads
    network, tokenizer = load_causal_lm(name, "cpu", model_dtype(precision))
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "chat_template", None) is None:
        raise UserError(f"{name}: the tokenizer has no chat template; training prompts are chat turns")
    return network, tokenizer, name


def attach_trainable_adapter(network: Any, adapter: str, base_name: str) -> Any:
    """``PeftModel.from_pretrained(..., is_trainable=True)``: without it nothing trains, silently."""
    from peft import PeftModel

    from alignment_tax.models.loading import _adapter_mismatch

    try:
        return PeftModel.from_pretrained(network, adapter, is_trainable=True)
    except (RuntimeError, ValueError, KeyError) as error:
        raise UserError(f"adapter {adapter} does not fit base {base_name}: {_adapter_mismatch(error)}") from error


def lora_config(lora: dict[str, Any]) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=int(lora["r"]),
        lora_alpha=int(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        # A string is PEFT's own: a regex over module names, or "all-linear".
        target_modules=targets if isinstance(targets := lora["target_modules"], str) else list(targets),
        bias=lora.get("bias", "none"),
        task_type="CAUSAL_LM",
    )


def peft_record(model: Any) -> dict[str, Any] | None:
    config = getattr(model, "peft_config", {}).get("default") if hasattr(model, "peft_config") else None
    if config is None:
        return None
    return json.loads(json.dumps(config.to_dict(), default=lambda v: sorted(v) if isinstance(v, set) else str(v)))


def trainable_parameters(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": int(trainable), "total": int(total)}


def save_adapter(trainer: Any, paths: RunPaths, tokenizer: Any) -> Path:
    """The trained adapter alone (not TRL's frozen "ref" copy), with the tokenizer, on the main process."""
    accelerator = trainer.accelerator
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(trainer.model)
        if hasattr(model, "peft_config") and "default" in model.peft_config:
            model.save_pretrained(str(paths.adapter), selected_adapters=["default"])
        else:
            model.save_pretrained(str(paths.adapter))
        tokenizer.save_pretrained(str(paths.adapter))
    accelerator.wait_for_everyone()
    return paths.adapter


def drift_callback(config: dict[str, Any], tokenizer: Any, enable_thinking: bool = False):
    """A :class:`~alignment_tax.trainers.callbacks.DriftCallback` when ``drift.every`` > 0, else None."""
    drift = config.get("drift") or {}
    every = int(drift.get("every") or 0)
    if every <= 0:
        return None
    from alignment_tax.data.corpus import load_corpus
    from alignment_tax.trainers.callbacks import DriftCallback, cmrc_probe

    if not drift.get("data"):
        raise UserError("drift.every is set but drift.data is not: give a text corpus (e.g. CMRC passages)")
    texts = load_corpus(drift["data"], field=drift.get("field") or "text", dedupe=True)
    if drift.get("limit"):
        texts = texts[: int(drift["limit"])]
    probes = []
    if drift.get("cmrc_data") and int(drift.get("cmrc_limit") or 0) > 0:
        probes.append(
            cmrc_probe(
                drift["cmrc_data"],
                int(drift["cmrc_limit"]),
                int(drift.get("cmrc_max_new_tokens") or 64),
                enable_thinking,
            )
        )
    return DriftCallback(
        texts,
        every,
        tokenizer=tokenizer,
        batch_size=int(drift.get("batch_size") or 8),
        max_length=drift.get("max_length"),
        probes=probes,
    )


def run_trainer(trainer: Any, paths: RunPaths, record: dict[str, Any], checkpoint: str | None) -> Any:
    """Train (from ``checkpoint`` when resuming), keeping the record and the log current."""
    from alignment_tax.trainers.callbacks import report_progress_as, write_log_history

    report_progress_as(trainer, f"train {paths.root.resolve().name}")
    record["resumed_from"] = checkpoint
    write_record(paths, record)
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except KeyboardInterrupt:
        record["status"] = "interrupted"
        record["global_step"] = trainer.state.global_step
        write_record(paths, record)
        if is_main_process():
            write_log_history(paths.log, trainer.state.log_history)
        raise
    if is_main_process():
        write_log_history(paths.log, trainer.state.log_history)
    return trainer
