"""An evaluation's settings, checked before any data or model loads.

The same rules serve ``evaluate``'s flags (named ``--limit``) and a spec's ``evaluate.options``
(named ``evaluate.options.limit``): a wrong value is one line, not a failure minutes later inside
lm-eval, numpy or the drift pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from alignment_tax.argtypes import check_seed, check_whole
from alignment_tax.errors import UserError

MIN_DRIFT_WINDOW = 2  # a window scores tokens after its first: one token scores nothing
BOOLEAN_KEYS = ("samples", "enable_thinking")


def flag_name(key: str) -> str:
    """``drift_window`` → ``--drift-window``."""
    return "--" + key.replace("_", "-")


def check_batch_size(value: Any, name: str) -> int | str:
    """A positive whole number, or lm-eval's ``auto`` / ``auto:N``."""
    if isinstance(value, str) and (value == "auto" or value.startswith("auto:")):
        return value
    if isinstance(value, str):
        raise UserError(f"{name} must be a positive whole number or 'auto', got {value!r}")
    return check_whole(value, name, 1)


def _check_drift(values: Mapping[str, Any], name_of: Callable[[str], str]) -> None:
    window, stride = values.get("drift_window"), values.get("drift_stride")
    if window is not None:
        check_whole(window, name_of("drift_window"), MIN_DRIFT_WINDOW)
    if stride is not None:
        check_whole(stride, name_of("drift_stride"), 1)
    if window is not None and stride is not None and stride > window - 1:
        raise UserError(
            f"{name_of('drift_stride')} must be at most {name_of('drift_window')} - 1 ({window - 1}), got {stride}"
        )


def check_evaluate_values(values: Mapping[str, Any], name_of: Callable[[str], str] = flag_name) -> None:
    """Check the settings in ``values`` that are present and not None; ``name_of`` names a key in messages."""
    present = {key: value for key, value in values.items() if value is not None}
    if "limit" in present:
        check_whole(present["limit"], name_of("limit"), 1)
    if "seed" in present:
        check_seed(present["seed"], name_of("seed"))
    if "batch_size" in present:
        check_batch_size(present["batch_size"], name_of("batch_size"))
    for key in BOOLEAN_KEYS:
        if key in present and not isinstance(present[key], bool):
            raise UserError(f"{name_of(key)} must be true or false, got {present[key]!r}")
    _check_drift(present, name_of)


def check_evaluate_options(options: Any) -> None:
    """:func:`check_evaluate_values` on an ``EvaluateOptions``, named as ``evaluate``'s flags."""
    keys = ("limit", "seed", "batch_size", "enable_thinking", "drift_window", "drift_stride")
    check_evaluate_values({key: getattr(options, key) for key in keys})
