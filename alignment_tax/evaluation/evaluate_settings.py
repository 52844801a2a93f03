"""What an evaluation's settings decide besides the weights: the keys that say when a result or
an answer can be reused, the weights' placement, and the tokenizers the caps are counted in.
"""

from __future__ import annotations

from typing import Any

from alignment_tax import provenance
from alignment_tax.errors import UserError
from alignment_tax.evaluation.checks import AUTO_BASE, DRIFT_TASK
from alignment_tax.models.loading import LoadedModel, load_tokenizer
from alignment_tax.models.placement import Placement


def batching_settings(options: Any, loaded: LoadedModel) -> dict[str, Any]:
    """What changes transformers' outputs besides weights and request: padding and kernels.

    Padding changes greedy outputs (on an H200 in bf16, 13 of 60 outputs agreed between two
    batchings), and so do the device and the attention implementation; a base answered at
    one batch size must not be reused, nor a cached answer served, for a run at another. vLLM and
    a server schedule their own batches, which no setting here decides. Not the number of
    processes: each answers whole batches of the one-process schedule (request_blocks).

    ``loaded`` is the candidate: a base loaded separately uses the same loader, so the same
    attention implementation.

    >>> from types import SimpleNamespace
    >>> options = SimpleNamespace(engine="hf", batch_size=8)
    >>> batching_settings(options, LoadedModel(None, None, "m", None, "cpu", "float32"))
    {'batch_size': 8, 'device': 'cpu', 'attention': None}
    """
    if options.engine != "hf":
        return {}
    config = getattr(loaded.model, "config", None)
    return {
        "batch_size": options.batch_size,
        "device": loaded.device,
        "attention": getattr(config, "_attn_implementation", None),
    }


def scoring_settings(options: Any, loaded: LoadedModel, data_hashes: dict, caps: dict[str, int]) -> dict[str, Any]:
    """Everything besides the model's weights that changes a score: the base-reuse key."""
    return {
        **batching_settings(options, loaded),
        "tasks": sorted(options.tasks),
        "data": data_hashes,
        "limit": options.limit,
        "dtype": loaded.dtype,
        "engine": options.engine,
        "seed": options.seed,
        "enable_thinking": options.enable_thinking,
        "max_gen_toks": caps,
        **({"lang_tolerance": options.lang_tolerance} if options.lang_tolerance else {}),
        "embedder": provenance.model_identity(options.embedder),
        "version": provenance.versions()["alignment-tax"],
    }


def checked_placement(options: Any) -> Placement:
    """The weights' placement, checked before anything loads; a device map must have something to place."""
    placement = Placement(options.device_map, options.max_memory, options.offload_folder)
    placement.check_devices()
    if placement.dispatched and options.engine != "hf" and DRIFT_TASK not in options.tasks:
        raise UserError(
            f"--device-map places the weights transformers loads; with --engine {options.engine} only drift does, "
            "and drift is not among --tasks (vLLM spreads a model with --tensor-parallel-size)"
        )
    return placement


def own_base_tokenizers(options: Any, loaded: LoadedModel) -> list[Any]:
    """The base's tokenizer when the base is another model than the candidate's (it answers with its own)."""
    if options.base is None or options.base == loaded.name or (loaded.has_adapter and options.base == AUTO_BASE):
        return []
    return [load_tokenizer(options.base)]
