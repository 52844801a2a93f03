"""The values of a training configuration: their types and ranges, checked when the config loads.

Keys are checked by :func:`alignment_tax.trainers.config.validate`; this module checks what they
hold. A ``training`` value of the wrong type (``learning_rate=abc``) is otherwise accepted by the
library's config class and fails inside the optimizer after the model has loaded; an out-of-range
one (``num_train_epochs=-1``) may not fail at all.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from alignment_tax.argtypes import check_number, check_seed, check_whole, flag
from alignment_tax.errors import UserError


def _whole(least: int) -> Callable[[Any, str], Any]:
    return lambda value, name: check_whole(value, name, least)


def _tolerance(value: Any, name: str) -> Any:
    from alignment_tax.metrics.scripts import parse_tolerance

    parse_tolerance(value)  # a malformed tolerance fails at config time, not at the first reward
    return value


def _number(low: float, high: float = math.inf, low_open: bool = False) -> Callable[[Any, str], Any]:
    return lambda value, name: check_number(value, name, low, high, low_open=low_open)


def _steps(value: Any, name: str) -> Any:
    # transformers' max_steps: -1 means "run num_train_epochs"; otherwise at least one step.
    if value == -1 and not isinstance(value, bool):
        return value
    return check_whole(value, name, 1)


_POSITIVE, _NON_NEGATIVE, _SHARE = _number(0, low_open=True), _number(0), _number(0, 1)

# (section, key) → its rule; None values are left to the defaults' meaning ("not set").
RANGES: dict[tuple[str, str], Callable[[Any, str], Any]] = {
    ("training", "learning_rate"): _POSITIVE,
    ("training", "num_train_epochs"): _POSITIVE,
    ("training", "max_steps"): _steps,
    ("training", "per_device_train_batch_size"): _whole(1),
    ("training", "gradient_accumulation_steps"): _whole(1),
    ("training", "warmup_ratio"): _SHARE,
    ("training", "weight_decay"): _NON_NEGATIVE,
    ("training", "max_grad_norm"): _NON_NEGATIVE,
    ("training", "seed"): check_seed,
    ("training", "num_generations"): _whole(2),  # GRPO's advantage compares completions of one prompt
    ("training", "max_completion_length"): _whole(1),
    ("training", "temperature"): _POSITIVE,
    ("training", "top_p"): _number(0, 1, low_open=True),
    ("training", "beta"): _NON_NEGATIVE,
    ("lora", "r"): _whole(1),
    ("lora", "alpha"): _POSITIVE,
    ("lora", "dropout"): _SHARE,
    ("calibration", "quantile"): _SHARE,
    ("calibration", "prompts"): _whole(1),
    ("calibration", "samples_per_prompt"): _whole(1),
    ("calibration", "temperature"): _POSITIVE,
    ("calibration", "top_p"): _number(0, 1, low_open=True),
    ("calibration", "max_new_tokens"): _whole(1),
    ("calibration", "batch_size"): _whole(1),
    ("calibration", "seed"): check_seed,
    ("calibration", "max_ci_width"): _number(0, 1),
    ("reward", "language_tolerance"): _tolerance,
    ("data", "shuffle_seed"): check_seed,
    ("drift", "limit"): _whole(1),
    ("drift", "batch_size"): _whole(1),
    ("drift", "max_length"): _whole(2),
    ("reward", "embedder_batch_size"): _whole(1),
}

_SCALARS = {"int": int, "float": float, "bool": bool}


def calibration_flag(key: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type for ``calibrate-tau``'s flag of calibration setting ``key``: the config's rule."""
    return flag(parse, RANGES[("calibration", key)])


def _scalar_type(annotation: Any) -> tuple[type, bool] | None:
    """``(int|float|bool, None allowed)`` for a plain scalar annotation, else None (not checked here)."""
    if isinstance(annotation, str):  # postponed annotations: "float | None"
        parts = [part.strip() for part in annotation.split("|")]
        args = tuple(type(None) if part == "None" else _SCALARS.get(part, part) for part in parts)
    elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
    else:
        args = (annotation,)
    rest = [arg for arg in args if arg is not type(None)]
    if len(rest) == 1 and rest[0] in (int, float, bool):
        return rest[0], len(rest) < len(args)
    return None


@functools.cache
def library_scalar_types(config_class: type) -> dict[str, tuple[type, bool]]:
    """The library config class's int, float and bool fields (None allowed where the default is None)."""
    found = {}
    for field in dataclasses.fields(config_class):
        kind = _scalar_type(field.type)
        if kind is not None:
            found[field.name] = (kind[0], kind[1] or field.default is None)
    return found


def _type_problem(value: Any, kind: type, nullable: bool) -> str | None:
    if value is None:
        return None if nullable else "a value (not null)"
    if kind is bool:
        return None if isinstance(value, bool) else "true or false"
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        return "a whole number" if kind is int else "a number"
    return None


def _yaml_hint(value: Any) -> str:
    """YAML 1.1 reads a number without a dot (1e-6) as text: say so when that is what happened."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return " (YAML reads 1e-6 as text: write 1.0e-6)"


def check_training_types(training: Mapping[str, Any], config_class: type, label: str) -> None:
    """Every int, float or bool field of the library's config class holds a value of its type."""
    kinds = library_scalar_types(config_class)
    for key, value in training.items():
        if key in kinds:
            problem = _type_problem(value, *kinds[key])
            if problem:
                raise UserError(f"{label}: training.{key} must be {problem}, got {value!r}{_yaml_hint(value)}")


def check_ranges(config: Mapping[str, Any], label: str) -> None:
    """The values :data:`RANGES` knows are within their ranges."""
    for (section, key), rule in RANGES.items():
        value = (config.get(section) or {}).get(key)
        if value is not None:
            try:
                rule(value, f"{section}.{key}")
            except UserError as error:
                raise UserError(f"{label}: {error}{_yaml_hint(value)}") from None
