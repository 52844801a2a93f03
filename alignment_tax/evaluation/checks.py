"""An evaluation's settings, checked before any data or model loads.

The same rules serve ``evaluate``'s flags (named ``--limit``) and a spec's ``evaluate.options``
(named ``evaluate.options.limit``): a wrong value is one line, not a failure minutes later inside
lm-eval, numpy or the drift pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from alignment_tax.argtypes import check_seed, check_whole
from alignment_tax.errors import UserError

MIN_DRIFT_WINDOW = 2  # a window scores tokens after its first: one token scores nothing
BOOLEAN_KEYS = ("samples", "enable_thinking")
DRIFT_TASK = "drift"  # not an lm-eval task: evaluate's own per-token pass
AUTO_BASE = "auto"  # --base with no value: the adapter's base, the adapter disabled


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
    packing = values.get("drift_packing")
    if packing is not None and packing not in ("auto", "on", "off"):
        raise UserError(f"{name_of('drift_packing')} must be auto, on or off, got {packing!r}")
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
    if "lang_tolerance" in present:  # a malformed tolerance fails with the other values, before anything loads
        from alignment_tax.metrics.scripts import parse_tolerance

        try:
            parse_tolerance(present["lang_tolerance"])
        except UserError as error:
            raise UserError(f"{name_of('lang_tolerance')}: {error}") from None
    for key in BOOLEAN_KEYS:
        if key in present and not isinstance(present[key], bool):
            raise UserError(f"{name_of(key)} must be true or false, got {present[key]!r}")
    _check_drift(present, name_of)


def check_evaluate_options(options: Any) -> None:
    """:func:`check_evaluate_values` on an ``EvaluateOptions``, named as ``evaluate``'s flags."""
    keys = (
        "limit",
        "seed",
        "batch_size",
        "enable_thinking",
        "drift_window",
        "drift_stride",
        "drift_packing",
        "lang_tolerance",
    )
    check_evaluate_values({key: getattr(options, key) for key in keys})


def _existing(name: str, what: str) -> Path | None:
    """``name`` as an existing path, None for a hub id; a path that is not there is one line."""
    from alignment_tax.data.hub import looks_like_hub_id
    from alignment_tax.models.loading import looks_local

    path = Path(name).expanduser()
    if path.exists():
        return path
    if looks_local(name) or not looks_like_hub_id(name):
        raise UserError(f"{what} not found: {name}")
    return None


def _check_model_source(name: str, what: str) -> None:
    from alignment_tax.models.loading import check_model_folder

    path = _existing(name, what)
    if path is not None and path.is_file():
        raise UserError(f"{what} {name} is a file, not a model folder")
    if path is not None:
        check_model_folder(path, what)


def _check_data_source(source: Any, what: str) -> None:
    from alignment_tax.data.hub import looks_like_hub_id

    if isinstance(source, Mapping):
        source = source.get("path")
    if not isinstance(source, str) or not source.strip():
        return  # the task loader says what a malformed override lacks
    if not Path(source).expanduser().exists() and not looks_like_hub_id(source):
        raise UserError(f"{what}: file not found: {source}")


def check_evaluate_inputs(options: Any) -> None:
    """Task names, model, adapter, base, embedder and data paths, in about a second.

    Runs before lm-eval, any dataset or any model loads, so that a typo costs a second, not the
    half minute lm-eval's task index takes or the minutes a model load takes.
    """
    from alignment_tax.models.loading import adapter_base, check_embedder_folder
    from alignment_tax.tasks.names import check_task_names

    check_task_names(options.tasks, also=(DRIFT_TASK,))
    if options.model is None and options.adapter is None:
        raise UserError("give --model, --adapter, or both")
    name = options.model or adapter_base(options.adapter)
    if options.adapter is not None:
        adapter_base(options.adapter)  # a missing or malformed adapter folder
    _check_model_source(name, "model")
    if options.base == AUTO_BASE and options.adapter is None:
        raise UserError("--base needs a model path or id when --model is a full checkpoint (no --adapter)")
    if options.base not in (None, AUTO_BASE):
        _check_model_source(options.base, "base model (--base)")
    if options.max_gen_toks:
        from alignment_tax.evaluation.generation_caps import check_caps_fit, config_context

        # vLLM runs with --max-model-len where given; otherwise every engine takes the config's.
        context = options.vllm.max_model_len if options.engine == "vllm" else None
        # The base answers under the same caps, so a full-checkpoint --base must hold them too.
        for model in (name, options.base if options.base not in (None, AUTO_BASE) else None):
            if model is not None:
                check_caps_fit(options.max_gen_toks, context or config_context(model))
    if options.embedder:
        _existing(options.embedder, "embedder")
        check_embedder_folder(options.embedder)
    if options.data_dir and not Path(options.data_dir).expanduser().is_dir():
        raise UserError(f"data folder not found: {options.data_dir}")
    for task, source in (options.data or {}).items():
        _check_data_source(source, f"--data {task}")
    if options.drift_corpus:
        _check_data_source(options.drift_corpus, "--drift-corpus")
