"""Supervised fine-tuning with LoRA over TRL's ``SFTTrainer`` (paper §3.2 stage 1, §4.1, A.2).

The data are the task's conversational prompt → completion pairs (see
:mod:`alignment_tax.trainers.training_examples`). By default only the reply is supervised
(``supervise: assistant`` → TRL ``completion_only_loss=True``): TRL renders the prompt with the
generation prompt and the whole conversation through the model's own chat template and masks
their common prefix, which works with any template (Llama, Gemma, Mistral, SmolLM, Qwen).
TRL's ``assistant_only_loss`` is not used: it needs ``{% generation %}`` markers that few real
templates have (TRL patches only those it recognises), and with one user turn and one reply
it would mask nothing more. ``supervise: all`` trains on every token of the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alignment_tax.trainers.config import make_training_args
from alignment_tax.trainers.devices import device_settings, gradient_accumulation, resolve_precision, world_size
from alignment_tax.trainers.lora_model import (
    attach_trainable_adapter,
    load_lm_for_training,
    lora_config,
    peft_record,
    trainable_parameters,
)
from alignment_tax.trainers.run_folder import (
    RunPaths,
    args_dict,
    base_record,
    check_resumable,
    check_same_inputs,
    final_losses,
    finish_record,
    last_checkpoint,
    prepare_output,
    run_trainer,
    save_adapter,
    write_record,
)
from alignment_tax.trainers.training_examples import TrainingData, apply_prompt_cap, load_training_data


@dataclass
class Built:
    """A trainer ready to train, and what its record needs."""

    trainer: Any
    tokenizer: Any
    data: TrainingData
    record: dict[str, Any]
    paths: RunPaths
    checkpoint: str | None
    reward: Any = None  # GRPO: the CompositeReward whose parts TRL calls


def build_sft(
    config: dict[str, Any],
    *,
    model: str | None,
    adapter: str | None,
    train_data: str,
    output: str,
) -> Built:
    """Load data and model and build the ``SFTTrainer`` (nothing is trained yet)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    paths = prepare_output(output)
    checkpoint = last_checkpoint(paths)
    before = check_resumable(paths, config, checkpoint)
    training = device_settings(dict(config["training"]))
    precision = resolve_precision(config["precision"], bool(training.get("use_cpu")))
    processes = world_size()
    accumulation = gradient_accumulation(config, 8, processes)

    data = load_training_data(config["task"], train_data, config["data"])
    chat_kwargs = {"enable_thinking": bool(config.get("enable_thinking"))}

    network, tokenizer, base_name = load_lm_for_training(model, adapter, precision, padding_side="right")
    # The same rows under the same rule as GRPO (data.max_prompt_length): a fair comparison.
    apply_prompt_cap(data, tokenizer, config["data"].get("max_prompt_length"), chat_kwargs)
    rows = [
        {"prompt": e["prompt"], "completion": e["completion"], "chat_template_kwargs": chat_kwargs}
        for e in data.examples
    ]
    dataset = Dataset.from_list(rows)
    check_same_inputs(before, paths, data.sha256, model=base_name, adapter_init=adapter)
    peft_config = None
    if adapter is not None:
        network = attach_trainable_adapter(network, adapter, base_name)
    else:
        peft_config = lora_config(config["lora"])

    reply_only = config.get("supervise", "assistant") == "assistant"
    kwargs = {
        **training,
        "output_dir": str(paths.checkpoints),
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        # The completion mask alone keeps the reply and its end-of-turn token (so a model learns to
        # stop) under any template; assistant_only_loss would refuse templates without markers.
        "assistant_only_loss": False,
        "completion_only_loss": reply_only,
    }
    if accumulation is not None:
        kwargs["gradient_accumulation_steps"] = accumulation
    args = make_training_args(SFTConfig, kwargs)

    trainer = _make_trainer(SFTTrainer, network, args, dataset, tokenizer, peft_config)
    if reply_only:
        trainer.train_dataset = trainer.train_dataset.map(
            _unsupervise_trailing_whitespace, fn_kwargs={"tokenizer": tokenizer}, desc="Masking the turn's trailer"
        )
    callbacks = _add_callbacks(trainer, config, tokenizer, paths)
    record = base_record(
        "sft",
        config,
        model=base_name,
        adapter_init=adapter,
        train_data=data.record(),
        training_args={"class": "trl.SFTConfig", **args_dict(args)},
        peft_config=peft_record(trainer.model),
        parameters=trainable_parameters(trainer.model),
        callbacks=callbacks,
        outputs={"adapter": str(paths.adapter), "log": str(paths.log), "checkpoints": str(paths.checkpoints)},
    )
    record["resolved"] = {
        "precision": precision,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "world_size": processes,
        "supervise": config.get("supervise"),
    }
    return Built(trainer, tokenizer, data, record, paths, checkpoint)


def _unsupervise_trailing_whitespace(row: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """Mask the whitespace a template writes after the end-of-turn token (ChatML's and Gemma's newline).

    The completion mask keeps everything after the prompt, but generation stops at the end of
    the turn: the newline after it is never generated, and supervising it would only dilute the loss.
    """
    labels = list(row["labels"])
    end = len(labels)
    while end > 0 and labels[end - 1] != -100 and not tokenizer.decode([labels[end - 1]]).strip():
        end -= 1
    labels[end:] = [-100] * (len(labels) - end)
    return {"labels": labels}


def _make_trainer(cls, network, args, dataset, tokenizer, peft_config, **extra):
    from alignment_tax.errors import UserError

    try:
        return cls(
            model=network,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            **extra,
        )
    except ValueError as error:
        # TRL reports a bad setup (a dataset or template it cannot use) as ValueError.
        text = " ".join(str(error).split())
        raise UserError(f"could not set up training: {text}") from error


def _add_callbacks(trainer: Any, config: dict[str, Any], tokenizer: Any, paths: RunPaths) -> list[str]:
    from alignment_tax.trainers.callbacks import LogHistoryCallback, drift_callback

    names = []
    trainer.add_callback(LogHistoryCallback(paths.log))
    names.append("LogHistoryCallback")
    drift = drift_callback(config, tokenizer, bool(config.get("enable_thinking")))
    if drift is not None:
        trainer.add_callback(drift.attach(trainer))
        names.append(f"DriftCallback(every={drift.every}, texts={len(drift.texts)})")
    return names


def train_sft(
    config: dict[str, Any], *, model: str | None, adapter: str | None, train_data: str, output: str
) -> dict[str, Any]:
    """Train, save ``OUTPUT/adapter``, and return a summary."""
    built = build_sft(config, model=model, adapter=adapter, train_data=train_data, output=output)
    return finish(built)


def finish(built: Built) -> dict[str, Any]:
    run_trainer(built.trainer, built.paths, built.record, built.checkpoint)
    save_adapter(built.trainer, built.paths, built.tokenizer)
    finish_record(built.record, built.trainer)
    write_record(built.paths, built.record)
    return summary(built)


def summary(built: Built) -> dict[str, Any]:
    state = built.trainer.state
    losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
    return {
        "method": built.record["method"],
        "output": str(built.paths.root),
        "adapter": str(built.paths.adapter),
        "config": str(built.paths.config),
        "log": str(built.paths.log),
        "global_step": state.global_step,
        "resumed_from": built.checkpoint,
        "examples": len(built.data.examples),
        "last_loss": losses[-1] if losses else None,
        **final_losses(state.log_history),
    }
