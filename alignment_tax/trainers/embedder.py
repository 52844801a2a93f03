"""The reward's bilingual sentence embedder: contrastive training on parallel pairs (paper §3.4, §4.1).

Each translation pair is a positive; the other targets in the batch are its negatives
(sentence-transformers' ``MultipleNegativesRankingLoss``), so the per-device batch size is the
number of negatives per pair minus one and the ``no_duplicates`` batch sampler keeps a repeated
sentence from becoming its own negative. ``embedder.loss: mnrl_symmetric`` also ranks sources
for each target. The source and target sides follow ``--task`` (``bo_zh_mt``: Tibetan anchors,
Chinese positives), read with the same loader and column options as the other methods.
The model is saved under ``OUTPUT/embedder`` and is what ``--embedder`` takes elsewhere.
"""

from __future__ import annotations

from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.trainers.callbacks import LogHistoryCallback
from alignment_tax.trainers.config import make_training_args
from alignment_tax.trainers.devices import (
    device_settings,
    gradient_accumulation,
    is_main_process,
    resolve_precision,
    world_size,
)
from alignment_tax.trainers.run_folder import (
    args_dict,
    base_record,
    check_resumable,
    check_same_inputs,
    final_losses,
    finish_record,
    last_checkpoint,
    prepare_output,
    run_trainer,
    write_record,
)
from alignment_tax.trainers.training_examples import TrainingData, load_records, select_rows

LOSSES = ("mnrl", "mnrl_symmetric")


def _pairs(config: dict[str, Any], train_data: str) -> TrainingData:
    from alignment_tax.tasks.prompts import TASK_KINDS, task_metadata

    task = config["task"]
    if TASK_KINDS.get(task) != "mt":
        raise UserError(
            f"--method embedder trains on translation pairs: choose --task bo_zh_mt or zh_bo_mt, not {task}"
        )
    data = config["data"]
    pairs, sha256 = load_records(task, str(train_data), data)
    selected = select_rows(pairs, data, str(train_data))
    examples = [{"anchor": p.source, "positive": p.target} for p in selected]
    return TrainingData(
        examples,
        str(train_data),
        task,
        task_metadata(task)["target_lang"],
        [],
        len(pairs),
        sha256,
        {"skip": data.get("skip"), "limit": data.get("limit")},
    )


def build_embedder(config: dict[str, Any], *, model: str | None, train_data: str, output: str):
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from alignment_tax.models.loading import load_embedder
    from alignment_tax.trainers.sft import Built

    if not model:
        raise UserError("--method embedder needs --model: the sentence-transformers model (or encoder) to start from")
    settings = config["embedder"]
    if settings["loss"] not in LOSSES:
        raise UserError(f"embedder.loss must be one of {', '.join(LOSSES)}, got {settings['loss']!r}")
    paths = prepare_output(output)
    checkpoint = last_checkpoint(paths)
    before = check_resumable(paths, config, checkpoint)
    training = device_settings(dict(config["training"]))
    precision = resolve_precision(config["precision"], bool(training.get("use_cpu")))
    accumulation = gradient_accumulation(config, 8, world_size())

    data = _pairs(config, train_data)
    check_same_inputs(before, paths, data.sha256, model=model)
    if len(data.examples) < 2:
        raise UserError(f"{data.source}: in-batch negatives need at least 2 pairs, got {len(data.examples)}")
    encoder = load_embedder(model, device="cpu")
    if settings.get("max_seq_length"):
        encoder.max_seq_length = int(settings["max_seq_length"])
    directions = ("query_to_doc", "doc_to_query") if settings["loss"] == "mnrl_symmetric" else ("query_to_doc",)
    loss = MultipleNegativesRankingLoss(encoder, scale=float(settings["scale"]), directions=directions)

    kwargs = {
        **training,
        "output_dir": str(paths.checkpoints),
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
    }
    if accumulation is not None:
        kwargs["gradient_accumulation_steps"] = accumulation
    args = make_training_args(SentenceTransformerTrainingArguments, kwargs)
    trainer = SentenceTransformerTrainer(
        model=encoder, args=args, train_dataset=Dataset.from_list(data.examples), loss=loss
    )
    trainer.add_callback(LogHistoryCallback(paths.log))
    record = base_record(
        "embedder",
        config,
        model=model,
        train_data=data.record(),
        training_args={"class": "sentence_transformers.SentenceTransformerTrainingArguments", **args_dict(args)},
        loss={
            "class": "MultipleNegativesRankingLoss",
            "scale": float(settings["scale"]),
            "directions": list(directions),
        },
        outputs={"embedder": str(paths.embedder), "log": str(paths.log), "checkpoints": str(paths.checkpoints)},
    )
    record["resolved"] = {
        "precision": precision,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "world_size": world_size(),
        "max_seq_length": encoder.max_seq_length,
    }
    return Built(trainer, None, data, record, paths, checkpoint)


def train_embedder(config: dict[str, Any], *, model: str | None, train_data: str, output: str) -> dict[str, Any]:
    built = build_embedder(config, model=model, train_data=train_data, output=output)
    run_trainer(built.trainer, built.paths, built.record, built.checkpoint)
    built.trainer.accelerator.wait_for_everyone()
    if is_main_process():
        built.trainer.model.save(str(built.paths.embedder))
    finish_record(built.record, built.trainer)
    write_record(built.paths, built.record)
    losses = [entry["loss"] for entry in built.trainer.state.log_history if "loss" in entry]
    return {
        "method": "embedder",
        "output": str(built.paths.root),
        "embedder": str(built.paths.embedder),
        "config": str(built.paths.config),
        "log": str(built.paths.log),
        "global_step": built.trainer.state.global_step,
        "resumed_from": built.checkpoint,
        "examples": len(built.data.examples),
        "last_loss": losses[-1] if losses else None,
        **final_losses(built.trainer.state.log_history),
    }
