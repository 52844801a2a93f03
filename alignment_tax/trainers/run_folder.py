"""A run's folder: its layout, resuming from its checkpoints, and its record and log.

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
(:mod:`~alignment_tax.trainers.checkpoints`); set-aside folders count toward
``save_total_limit`` and are the first deleted when a new checkpoint is saved. One ``train`` at
a time writes an output folder: a second is refused in one line. ``train_loss`` in the record, the summary and the
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
from alignment_tax.provenance import TRAIN_RECORD, now, versions
from alignment_tax.trainers.devices import is_main_process, world_size

CONFIG_FILE = TRAIN_RECORD
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


def args_dict(args: Any) -> dict[str, Any]:
    """The library config's full dict (every default included), JSON-safe."""
    raw = args.to_dict()
    return json.loads(json.dumps(raw, default=str))


def write_record(paths: RunPaths, record: dict[str, Any]) -> None:
    if not is_main_process():
        return
    paths.config.write_text(json.dumps(record, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def base_record(method: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
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


def run_trainer(trainer: Any, paths: RunPaths, record: dict[str, Any], checkpoint: str | None) -> Any:
    """Train (from ``checkpoint`` when resuming), keeping the record and the log current."""
    from alignment_tax.trainers.callbacks import SetAsideRotation, report_progress_as, write_log_history

    report_progress_as(trainer, f"train {paths.root.resolve().name}")
    trainer.add_callback(SetAsideRotation(paths.checkpoints))
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
