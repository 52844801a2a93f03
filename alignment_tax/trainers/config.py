"""Training configuration: the paper's presets, YAML files, ``--set`` overrides and their checks.

A configuration is a small nested mapping. Top-level keys are ours; ``training`` holds keyword
arguments for the library's own config class (TRL ``SFTConfig`` / ``GRPOConfig``, or
sentence-transformers' ``SentenceTransformerTrainingArguments``), passed through untouched,
so any of their options can be set and every one of their defaults is recorded with the run::

    method: grpo
    task: bo_zh_mt
    precision: auto              # bf16 on a GPU that has it, else fp32 (never bf16 on CPU)
    global_batch_size: 32        # = processes × per_device_train_batch_size × gradient_accumulation_steps
    lora: {r: 64, alpha: 128, dropout: 0.05, target_modules: [q_proj, ...]}
    data: {split: train, skip: 5000, limit: null, max_prompt_length: 256}
    reward: {components: {similarity: 1.5, language: 1.0}, tau: auto}
    calibration: {quantile: 0.25, prompts: 64, samples_per_prompt: 4}
    drift: {every: 0, data: null}
    training: {num_train_epochs: 1, learning_rate: 5.0e-7, beta: 0.04, loss_type: grpo, ...}

The defaults in this module *are* the paper's presets (``configs/paper/*.yaml`` spell them out
and a test keeps the two equal). A YAML file may start with ``extends: other.yaml`` (a path
relative to it) and then only lists what differs. Merging replaces values key by key inside
each section (``reward.components`` and lists are replaced whole). ``--set`` takes
``section.key=value`` (``training.learning_rate=1e-6``, ``reward.components.bleu=1``) or a bare
``key=value`` when only one section has that key; values are read as YAML (``1e-6`` is a number).
Every unknown key is a :class:`~alignment_tax.errors.UserError` listing the valid ones.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import re

import yaml

from alignment_tax.errors import UserError


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 booleans: only true/false are booleans; ``no``, ``off``, ``yes`` stay strings
    (``save_strategy: no`` must reach transformers as "no", not False)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2 booleans (see :class:`_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass

METHODS = ("sft", "grpo", "embedder")
TRAIN_TASKS = ("bo_zh_mt", "zh_bo_mt", "bo_headline")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SUPERVISE = ("assistant", "all")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Top-level keys per method, and which of them are sections (mappings merged key by key).
_SCALARS = {
    "sft": ("method", "task", "precision", "global_batch_size", "supervise", "enable_thinking"),
    "grpo": ("method", "task", "precision", "global_batch_size", "enable_thinking"),
    "embedder": ("method", "task", "precision", "global_batch_size"),
}
_SECTIONS = {
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
        "max_prompt_length": None,  # GRPO: drop prompts longer than this many tokens (chat template applied)
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
        "task": "bo_zh_mt",
        "precision": "auto",
        "global_batch_size": 32,
        "supervise": "assistant",
        "enable_thinking": False,
        "lora": SECTION_DEFAULTS["lora"],
        "data": SECTION_DEFAULTS["data"],
        "drift": SECTION_DEFAULTS["drift"],
        "training": {
            "num_train_epochs": 3,
            "optim": "adamw_torch",
            "learning_rate": 2.0e-5,
            "lr_scheduler_type": "cosine",
            "warmup_steps": 0.1,  # transformers 5: a float below 1 is a ratio of the total steps
            "weight_decay": 0.0,
            "per_device_train_batch_size": 8,
            "max_length": 2048,
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
        "lora": SECTION_DEFAULTS["lora"],
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
        "task": "bo_zh_mt",
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
            "batch_sampler": "no_duplicates",
            "logging_steps": 10,
            "save_strategy": "steps",
            "save_steps": 500,
            "save_total_limit": 2,
            "seed": 42,
            "report_to": "none",
        },
    },
}

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


def default_config(method: str) -> dict[str, Any]:
    """The paper's preset for ``method`` (a deep copy, safe to change)."""
    return copy.deepcopy(DEFAULTS[check_method(method)])


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def training_args_class(method: str) -> type:
    """The library config class whose fields the ``training`` section may set."""
    if method == "sft":
        from trl import SFTConfig

        return SFTConfig
    if method == "grpo":
        from trl import GRPOConfig

        return GRPOConfig
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments


def training_keys(method: str) -> list[str]:
    """Every key ``training`` accepts for ``method`` (the library class's fields, less ours)."""
    fields = [f.name for f in dataclasses.fields(training_args_class(method)) if f.init]
    return sorted(name for name in fields if name not in OWNED_TRAINING_KEYS and not name.startswith("_"))


# -- reading values --------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A ``--set`` value read as YAML, with numbers YAML 1.1 leaves as strings (``1e-6``).

    >>> parse_value("1e-6"), parse_value("true"), parse_value("[q_proj, v_proj]"), parse_value("null")
    (1e-06, True, ['q_proj', 'v_proj'], None)
    >>> parse_value("no"), parse_value("off")
    ('no', 'off')
    """
    try:
        value = load_yaml(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        for convert in (int, float):
            try:
                return convert(value)
            except ValueError:
                pass
    return value


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    if path in seen:
        raise UserError(f"{path}: `extends` loops back to itself")
    try:
        document = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise UserError(f"{path}{where}: invalid YAML: {problem}") from error
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise UserError(f"{path}: a config file must be a mapping of keys to values, got {type(document).__name__}")
    parent = document.pop("extends", None)
    if parent is None:
        return document
    parent_path = (path.parent / str(parent)).resolve()
    base = _read_yaml(parent_path, seen + (path,))
    return merge(base, document, label=str(path))


def merge(base: dict[str, Any], update: Mapping[str, Any], label: str = "config") -> dict[str, Any]:
    """``update`` over ``base``: sections (mappings) key by key, everything else replaced."""
    result = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping) and key != "components":
            section = dict(result[key])
            for inner, inner_value in value.items():
                section[inner] = copy.deepcopy(inner_value)
            result[key] = section
        else:
            result[key] = copy.deepcopy(value)
    return result


def _unknown(key: str, valid: Iterable[str], where: str) -> UserError:
    valid = sorted(valid)
    close = difflib.get_close_matches(key.split(".")[-1], [v.split(".")[-1] for v in valid], n=1, cutoff=0.7)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UserError(f"unknown config key {key!r}{hint}; valid keys {where}: {', '.join(valid)}")


def _apply_set(config: dict[str, Any], item: str, method: str) -> None:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set expects KEY=VALUE, got {item!r}")
    value = parse_value(raw.strip())
    parts = key.split(".")
    if len(parts) == 1:
        if key in _SCALARS[method] or key in _SECTIONS[method]:
            config[key] = value
            return
        owners = [s for s in _SECTIONS[method] if s != "training" and key in SECTION_DEFAULTS[s]]
        if not owners and key in training_keys(method) + list(OWNED_TRAINING_KEYS):
            owners = ["training"]
        if len(owners) > 1:
            raise UserError(f"--set {key}: ambiguous, it is a key of {', '.join(owners)}; write e.g. {owners[0]}.{key}")
        if not owners:
            valid = list(_SCALARS[method]) + [f"{s}.<key>" for s in _SECTIONS[method]]
            raise _unknown(key, valid, f"for --method {method} (top level)")
        parts = [owners[0], key]
    section = parts[0]
    if section not in _SECTIONS[method]:
        raise _unknown(key, list(_SCALARS[method]) + list(_SECTIONS[method]), f"for --method {method} (top level)")
    target = config.setdefault(section, {})
    if not isinstance(target, dict):
        raise UserError(f"config key {section!r} must be a mapping, got {type(target).__name__}")
    if len(parts) == 2:
        target[parts[1]] = value
    elif len(parts) == 3 and section == "reward" and parts[1] == "components":
        components = dict(target.get("components") or {})
        components[parts[2]] = value
        target["components"] = components
    else:
        raise UserError(f"--set {key}: too many dots; write SECTION.KEY=VALUE (or reward.components.NAME=WEIGHT)")


def validate(config: dict[str, Any], method: str, label: str = "config") -> None:
    """Raise a :class:`UserError` for any key ``method`` does not know, listing the valid ones."""
    for key in config:
        if key not in _SCALARS[method] and key not in _SECTIONS[method]:
            raise _unknown(key, list(_SCALARS[method]) + list(_SECTIONS[method]), f"for --method {method} (top level)")
    for section in _SECTIONS[method]:
        values = config.get(section) or {}
        if not isinstance(values, Mapping):
            raise UserError(f"{label}: `{section}` must be a mapping of keys to values, got {type(values).__name__}")
        if section == "training":
            valid = training_keys(method)
            for key in values:
                if key in OWNED_TRAINING_KEYS:
                    raise UserError(f"{label}: training.{key} cannot be set here: {OWNED_TRAINING_KEYS[key]}")
                if key not in valid:
                    raise _unknown(f"training.{key}", valid, f"in `training` for --method {method}")
            continue
        for key in values:
            if key not in SECTION_DEFAULTS[section]:
                raise _unknown(f"{section}.{key}", SECTION_DEFAULTS[section], f"in `{section}`")
    if config.get("task") not in TRAIN_TASKS:
        raise UserError(f"{label}: unknown training task {config.get('task')!r}; choose one of {', '.join(TRAIN_TASKS)}")
    if config.get("precision") not in PRECISIONS:
        raise UserError(f"{label}: precision must be one of {', '.join(PRECISIONS)}, got {config.get('precision')!r}")
    if method == "sft" and config.get("supervise") not in SUPERVISE:
        raise UserError(f"{label}: supervise must be one of {', '.join(SUPERVISE)}, got {config.get('supervise')!r}")
    gbs = config.get("global_batch_size")
    if gbs is not None and (not isinstance(gbs, int) or isinstance(gbs, bool) or gbs < 1):
        raise UserError(f"{label}: global_batch_size must be a positive integer or null, got {gbs!r}")
    for section, key in (("data", "skip"), ("data", "limit"), ("data", "max_prompt_length"), ("drift", "every")):
        value = (config.get(section) or {}).get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise UserError(f"{label}: {section}.{key} must be a non-negative integer, got {value!r}")
    if method == "grpo":
        from alignment_tax.rewards import COMPONENTS

        components = config["reward"].get("components")
        if not isinstance(components, Mapping) or not components:
            raise UserError(f"{label}: reward.components must map components ({', '.join(COMPONENTS)}) to weights")
        for name, weight in components.items():
            if name not in COMPONENTS:
                raise _unknown(f"reward.components.{name}", COMPONENTS, "in `reward.components`")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise UserError(f"{label}: reward.components.{name} must be a number, got {weight!r}")
        tau = config["reward"].get("tau")
        if tau != "auto":
            from alignment_tax.rewards import check_tau

            check_tau(tau)
        quantile = config["calibration"].get("quantile")
        if not isinstance(quantile, (int, float)) or not 0.0 <= quantile <= 1.0:
            raise UserError(f"{label}: calibration.quantile must be in [0, 1], got {quantile!r}")


def load_config(
    method: str,
    path: str | os.PathLike | None = None,
    overrides: Iterable[str] = (),
    *,
    task: str | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """The effective configuration: preset, then the YAML file, then ``--set``, ``--task``, ``--max-steps``."""
    check_method(method)
    config = default_config(method)
    if path is not None:
        label = str(path)
        document = _read_yaml(Path(path).expanduser().resolve())
        declared = document.get("method")
        if declared is not None and declared != method:
            raise UserError(f"{path} is a config for --method {declared}, not {method}")
        validate(merge(config, document), method, label)  # name the file's own mistakes first
        config = merge(config, document)
    for item in overrides:
        _apply_set(config, item, method)
    if task is not None:
        config["task"] = task
    if max_steps is not None:
        if max_steps < 1:
            raise UserError(f"--max-steps must be a positive integer, got {max_steps}")
        config["training"]["max_steps"] = max_steps
    config["method"] = method
    validate(config, method, "config")
    return config


def flatten(config: Mapping[str, Any]) -> dict[str, Any]:
    """``{"section.key": value}`` for every leaf (``reward.components`` kept as one value)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            for inner, inner_value in value.items():
                flat[f"{key}.{inner}"] = inner_value
        else:
            flat[key] = value
    return flat


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys whose value differs between two configs, other than those a resumed run may change."""
    before, after = flatten(old), flatten(new)
    keys = sorted(set(before) | set(after))
    return [k for k in keys if k not in RESUMABLE_KEYS and before.get(k) != after.get(k)]
