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

The defaults (:mod:`alignment_tax.trainers.presets`) *are* the paper's presets
(``configs/paper/*.yaml`` name them; ``train --print-config`` prints them). A YAML file lists what
differs from the preset, and may start with ``extends: other.yaml`` (a path relative to it). Merging replaces values key by key inside
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
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from alignment_tax.errors import UserError
from alignment_tax.trainers.config_values import check_ranges, check_training_types
from alignment_tax.trainers.presets import (
    DEFAULTS,
    METHOD_SECTIONS,
    METHODS,
    OWNED_TRAINING_KEYS,
    PRECISIONS,
    RESUMABLE_KEYS,
    SCALAR_KEYS,
    SECTION_DEFAULTS,
    SUPERVISE,
    TRAIN_TASKS,
)


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


def make_training_args(cls: type, kwargs: dict[str, Any]) -> Any:
    """``cls(**kwargs)``, with the library's own complaints turned into one-line UserErrors."""
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as error:
        text = " ".join(str(error).split())
        raise UserError(f"invalid training settings for {cls.__name__}: {text}") from error


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
        if key in SCALAR_KEYS[method] or key in METHOD_SECTIONS[method]:
            config[key] = value
            return
        owners = [s for s in METHOD_SECTIONS[method] if s != "training" and key in SECTION_DEFAULTS[s]]
        if not owners and key in training_keys(method) + list(OWNED_TRAINING_KEYS):
            owners = ["training"]
        if len(owners) > 1:
            raise UserError(f"--set {key}: ambiguous, it is a key of {', '.join(owners)}; write e.g. {owners[0]}.{key}")
        if not owners:
            valid = list(SCALAR_KEYS[method]) + [f"{s}.<key>" for s in METHOD_SECTIONS[method]]
            raise _unknown(key, valid, f"for --method {method} (top level)")
        parts = [owners[0], key]
    section = parts[0]
    if section not in METHOD_SECTIONS[method]:
        raise _unknown(
            key, list(SCALAR_KEYS[method]) + list(METHOD_SECTIONS[method]), f"for --method {method} (top level)"
        )
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
        if key not in SCALAR_KEYS[method] and key not in METHOD_SECTIONS[method]:
            raise _unknown(
                key, list(SCALAR_KEYS[method]) + list(METHOD_SECTIONS[method]), f"for --method {method} (top level)"
            )
    for section in METHOD_SECTIONS[method]:
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
        raise UserError(
            f"{label}: unknown training task {config.get('task')!r}; choose one of {', '.join(TRAIN_TASKS)}"
        )
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
    check_training_types(config.get("training") or {}, training_args_class(method), label)
    check_ranges(config, label)
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
