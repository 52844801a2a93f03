"""The paper's presets: every default of every training method, and which keys are whose.

This is the one place their values are written: ``configs/paper/*.yaml`` only name a preset (for
``--config``, specs and ablations), and ``alignment-tax train --method M --print-config`` prints
one in full. Section references are to the reference study
(``../shared/docs/paper-semantic-rewards-alignment-tax.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

METHODS = ("sft", "grpo", "embedder")
TRAIN_TASKS = ("bo_zh_mt", "zh_bo_mt", "bo_headline")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SUPERVISE = ("assistant", "all")
# Every linear projection of a Qwen3 decoder layer (Appendix A.1); models.tiny_adapter uses them too.
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Top-level keys per method, and which of them are sections (mappings merged key by key).
SCALAR_KEYS = {
    "sft": ("method", "task", "precision", "global_batch_size", "supervise", "enable_thinking"),
    "grpo": ("method", "task", "precision", "global_batch_size", "enable_thinking"),
    "embedder": ("method", "task", "precision", "global_batch_size"),
}
METHOD_SECTIONS = {
    "sft": ("lora", "data", "drift", "training"),
    "grpo": ("lora", "data", "reward", "calibration", "drift", "training"),
    "embedder": ("data", "embedder", "training"),
}

# Our sections' keys and defaults (the paper's values where it gives them).
SECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "lora": {"r": 64, "alpha": 128, "dropout": 0.05, "target_modules": list(LORA_TARGETS), "bias": "none"},
    "data": {
        "split": "train",  # hub ids and dataset folders only
        "config": None,  # hub dataset config
        "source_column": None,  # translation pairs: default the language codes (bo, zh)
        "target_column": None,
        "article_column": None,  # headline pairs: detected when not given
        "headline_column": None,
        "skip_empty": False,  # a row with an empty side is an error (True: drop it)
        "shuffle_seed": None,  # shuffle the rows with this seed before skip/limit (None: file order)
        "skip": 0,  # leave out the first N rows (e.g. those the cold-start SFT used)
        "limit": None,  # then keep at most N rows
        "max_prompt_length": None,  # SFT and GRPO: leave out prompts longer than this many tokens (chat template applied)
    },
    "reward": {
        "components": {"similarity": 1.5, "language": 1.0},  # λsim, λlang (paper Eq. 4)
        "tau": "auto",  # a number, or auto: calibrate from the starting policy (see `calibration`)
        "language": None,  # target language for consistency/BLEU/length (None: the task's)
        "truncate_at_stop": True,  # score completions cut at the task's stop strings, as evaluate does
        "embedder_batch_size": 64,
        "precompute_references": True,  # encode every reference once before training
        "length_tolerance": 0.5,
        "length_falloff": 2.0,
        "language_tolerance": None,  # None: the paper's strict rule; e.g. "acronyms=5" lets "GDP" pass
    },
    "calibration": {
        "quantile": 0.25,  # tau = this quantile of the starting policy's similarities
        "prompts": 64,
        "samples_per_prompt": 4,
        "temperature": None,  # None: training.temperature
        "top_p": None,  # None: training.top_p
        "max_new_tokens": None,  # None: training.max_completion_length
        "batch_size": 8,
        "seed": 0,
        # Warn when tau's 95% bootstrap interval over prompts is wider: then the sample is too small to
        # pin tau down, as the paper's similarities move by a few hundredths between methods (Table 3).
        "max_ci_width": 0.05,
    },
    "drift": {
        "every": 0,  # measure drift from the base every N optimizer steps (0: never)
        "data": None,  # texts to measure on: a .txt, JSON/JSONL/CSV/parquet column, or SQuAD JSON passages
        "field": "text",
        "limit": 64,
        "batch_size": 8,
        "max_length": 512,
        "cmrc_data": None,  # optionally also CMRC 2018 EM/F1 on a subset of this SQuAD-layout file
        "cmrc_limit": 0,
        "cmrc_max_new_tokens": 64,
    },
    "embedder": {
        "loss": "mnrl",  # MultipleNegativesRankingLoss (in-batch negatives); "mnrl_symmetric" scores both ways
        "scale": 20.0,
        "max_seq_length": None,  # None: the model's own
    },
}

# `training` keys that our own keys decide (the message says which).
OWNED_TRAINING_KEYS = {
    "output_dir": "the output folder is --output",
    "bf16": "set `precision` (auto, bf16, fp16, fp32)",
    "fp16": "set `precision` (auto, bf16, fp16, fp32)",
    "reward_weights": "set `reward.components` ({component: weight})",
    "assistant_only_loss": "set `supervise` (assistant or all)",
    "completion_only_loss": "set `supervise` (assistant or all)",
    "chat_template_kwargs": "set `enable_thinking`",
    "resume_from_checkpoint": "a run resumes from its last checkpoint by itself",
    "gradient_checkpointing": "deprecated in transformers 5: set training.activation_checkpointing",
    "gradient_checkpointing_kwargs": "deprecated in transformers 5: set training.activation_checkpointing_kwargs",
}

_COMMON_TRAINING = {
    # Memory on a 4B model (TRL's default too); tests and CPU runs turn it off. transformers 5 renamed
    # gradient_checkpointing to activation_checkpointing (the old name warns and loses to the new).
    "activation_checkpointing": True,
    "logging_steps": 10,
    "save_strategy": "steps",
    "save_steps": 200,
    "save_total_limit": 2,
    "seed": 42,
    "report_to": "none",
}

DEFAULTS: dict[str, dict[str, Any]] = {
    # Strong SFT: paper §4.1 and Appendix A.2.
    "sft": {
        "method": "sft",
        "task": "bo_zh_mt",  # prompts from this evaluation task's template
        "precision": "auto",  # bf16 on a GPU that has it (the paper's), fp32 elsewhere; never bf16 on CPU
        "global_batch_size": 32,  # processes × per-device batch × accumulation (paper: 2 GPUs × 8 × 2)
        "supervise": "assistant",  # loss on the assistant's turn only; "all" for every token
        "enable_thinking": False,  # chat template kwarg, as `evaluate` sends prompts
        "lora": SECTION_DEFAULTS["lora"],  # Appendix A.1
        # The paper's 256-token prompt limit (A.3), as GRPO applies it: both train on the same rows.
        "data": {**SECTION_DEFAULTS["data"], "max_prompt_length": 256},
        "drift": SECTION_DEFAULTS["drift"],
        "training": {
            "num_train_epochs": 3,
            "optim": "adamw_torch",
            "learning_rate": 2.0e-5,
            "lr_scheduler_type": "cosine",
            "warmup_steps": 0.1,  # transformers 5: a float below 1 is a ratio of the total steps
            "weight_decay": 0.0,
            "per_device_train_batch_size": 8,
            "max_length": 2048,  # paper: "determined by the data and model defaults, typically 1024–2048"
            **_COMMON_TRAINING,
        },
    },
    # GRPO from the cold-start SFT adapter: paper §3.2–3.4, §4.1 and Appendix A.3.
    "grpo": {
        "method": "grpo",
        "task": "bo_zh_mt",
        "precision": "auto",
        "global_batch_size": 32,  # completions per optimizer step, as TRL counts (16 × 2 in the paper)
        "enable_thinking": False,
        "lora": SECTION_DEFAULTS["lora"],  # only without --adapter; with it, the adapter's own LoRA config trains
        # "The remaining training data": the rows after the cold-start SFT's 5,000
        # (configs/paper/sft_cold_start.yaml); TRL 1.16 has no prompt limit of its own.
        "data": {**SECTION_DEFAULTS["data"], "skip": 5000, "max_prompt_length": 256},
        "reward": SECTION_DEFAULTS["reward"],
        "calibration": SECTION_DEFAULTS["calibration"],
        "drift": SECTION_DEFAULTS["drift"],
        "training": {
            "num_train_epochs": 1,
            "optim": "adamw_torch",
            "learning_rate": 5.0e-7,
            "lr_scheduler_type": "linear",
            "warmup_steps": 0,
            "weight_decay": 0.0,
            "per_device_train_batch_size": 16,
            "num_generations": 8,
            "temperature": 0.8,
            "top_p": 0.9,
            "max_completion_length": 256,
            "beta": 0.04,  # > 0: KL to the starting (SFT) adapter; TRL's default 0.0 has no constraint
            "loss_type": "grpo",  # the original GRPO objective; TRL's default is "dapo"
            "scale_rewards": "group",
            "epsilon": 0.2,
            "num_iterations": 1,
            "use_vllm": False,  # GPU only: true (with vllm_mode colocate or server) samples with vLLM
            "vllm_mode": "colocate",
            **_COMMON_TRAINING,
            "logging_steps": 1,
            "save_steps": 50,
        },
    },
    # The reward's bilingual embedder: paper §3.4 and §4.1 (contrastive, in-batch negatives).
    "embedder": {
        "method": "embedder",
        "task": "bo_zh_mt",  # sources (bo) are anchors, targets (zh) positives
        "precision": "auto",
        "global_batch_size": None,  # in-batch negatives come from the per-device batch
        "data": SECTION_DEFAULTS["data"],
        "embedder": SECTION_DEFAULTS["embedder"],
        "training": {
            "num_train_epochs": 1,
            "learning_rate": 2.0e-5,
            "lr_scheduler_type": "linear",
            "warmup_steps": 0.1,
            "weight_decay": 0.01,
            "per_device_train_batch_size": 64,
            "batch_sampler": "no_duplicates",  # a repeated sentence must not be its own negative
            "logging_steps": 10,
            "save_strategy": "steps",
            "save_steps": 500,
            "save_total_limit": 2,
            "seed": 42,
            "report_to": "none",
        },
    },
}


def calibration_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """A GRPO config's ``calibration`` section, its unset sampling values taken from ``training``'s."""
    calibration, training = config["calibration"], config["training"]
    return {
        "quantile": float(calibration["quantile"]),
        "prompts": int(calibration["prompts"]),
        "samples_per_prompt": int(calibration["samples_per_prompt"]),
        "temperature": float(calibration.get("temperature") or training.get("temperature", 1.0)),
        "top_p": float(calibration.get("top_p") or training.get("top_p", 1.0)),
        "max_new_tokens": int(calibration.get("max_new_tokens") or training.get("max_completion_length", 256)),
        "batch_size": int(calibration["batch_size"]),
        "seed": int(calibration["seed"]),
        "max_ci_width": float(calibration["max_ci_width"]),
    }


# calibrate-tau's defaults: the calibration GRPO's preset runs (its sampling is GRPO's).
CALIBRATION_DEFAULTS = calibration_settings(DEFAULTS["grpo"])

# Keys whose value may change when a run resumes (a longer run, other logging or checkpoints).
RESUMABLE_KEYS = {
    "training.max_steps",
    "training.num_train_epochs",
    "training.logging_steps",
    "training.save_steps",
    "training.save_total_limit",
    "training.save_strategy",
    "training.report_to",
    "training.dataloader_num_workers",
    "drift.every",
    "drift.limit",
    "drift.batch_size",
    "drift.cmrc_limit",
}
