"""Generating through a LoRA adapter folded into the weights, the base's own weights restored bit for bit.

An unmerged LoRA layer computes ``W·x + s·B(A(x))``: two more small matrix products, and their
kernel launches, per projection per decoding step (a decode step at depth 36 costs 1.57x a bare
one on CPU). Folded in, ``(W + s·B·A)·x`` is one product, the cost of the bare model. With PEFT's
wrappers also taken out of the module tree for the duration, the model computes exactly what
``merge_and_unload()`` would have saved.

But ``W + s·B·A − s·B·A`` is not ``W`` in floating point, and the base (the adapter disabled)
and drift read ``W`` after the candidate has generated. So the weights of every folded layer are
copied (to the CPU, leaving device memory as it was) before merging and copied back afterwards:
the base's outputs come from its own weights exactly. PEFT's ``unmerge`` is still called, for its
bookkeeping only. The copy holds host memory the size of those layers' weights (about 7 GB for
Qwen3-4B in bf16) while the candidate generates; ``--no-merge-adapter`` avoids it.

Only plain LoRA on linear layers is folded; :func:`merge_blocker` names what is not (DoRA, whose
merge rescales every row of ``W``; ``modules_to_save`` and trainable tokens, which are not LoRA
updates at all; anything PEFT itself refuses to merge), and that generates unmerged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _lora_layers(model: Any) -> list[tuple[str, Any]]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(name, module) for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]


def merge_blocker(model: Any) -> str | None:
    """Why ``model`` (a ``PeftModel``) cannot have its adapter folded in exactly here, or None when it can."""
    from peft import PeftType
    from peft.tuners.lora.layer import Linear as LoraLinear
    from peft.utils.other import ModulesToSaveWrapper, TrainableTokensWrapper

    config = model.peft_config.get(model.active_adapter)
    if config is None or getattr(config, "peft_type", None) != PeftType.LORA:
        return f"not a LoRA adapter ({getattr(config, 'peft_type', None)})"
    if len(model.active_adapters) != 1:
        return f"{len(model.active_adapters)} active adapters"
    if getattr(config, "layer_replication", None):
        return "layer_replication (PEFT does not merge replicated layers)"
    for name, module in model.named_modules():
        if isinstance(module, TrainableTokensWrapper):
            return f"trainable tokens ({name}): not a LoRA update"
        if isinstance(module, ModulesToSaveWrapper):
            return f"modules_to_save ({name}): a whole copy of the module, not a LoRA update"
    layers = _lora_layers(model)
    if not layers:
        return "no LoRA layers"
    # Offloaded weights (--device-map with cpu or disk entries) are placeholders on the meta device
    # that accelerate's hooks fill in per call: a merge would write into the placeholder and be lost.
    if any(p.device.type == "meta" for _, layer in layers for p in layer.get_base_layer().parameters()):
        return "offloaded weights (--device-map): accelerate loads them per call, so a merge would not reach them"
    for name, layer in layers:
        if type(layer) is not LoraLinear:  # quantized bases, embeddings, convolutions, trainable tokens
            return f"{name} is a {type(layer).__name__}, not a plain LoRA Linear"
        if layer.lora_variant:
            variant = "DoRA" if any(layer.use_dora.values()) else type(next(iter(layer.lora_variant.values()))).__name__
            return f"{variant} ({name}): PEFT's merge of it rescales the base weights, untested here"
        if layer.merged:
            return f"{name} is already merged"
    return None


def _parent(model: Any, name: str) -> tuple[Any, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


@contextmanager
def merged_adapter(model: Any) -> Iterator[Any]:
    """Inside, ``model``'s adapter is folded into its weights and PEFT's LoRA wrappers are out of the
    module tree; afterwards every parameter holds exactly its value from before.

    Call only when :func:`merge_blocker` returns None. Inside, ``disable_adapter()`` would change
    nothing (the layers it switches are out of the tree): the base is served outside this block.
    """
    import torch

    layers = _lora_layers(model)
    # Keyed by identity: a parameter shared by two layers is saved (and restored) once.
    saved: dict[int, tuple[torch.nn.Parameter, torch.Tensor]] = {}
    for _, layer in layers:
        for parameter in layer.get_base_layer().parameters(recurse=False):
            saved.setdefault(id(parameter), (parameter, parameter.detach().to("cpu", copy=True)))
    swapped: list[tuple[Any, str, Any]] = []
    try:
        with torch.no_grad():
            model.base_model.merge_adapter()
        # The wrappers would still cost a Python call and a flag check per projection per step.
        for name, layer in layers:
            parent, child = _parent(model, name)
            setattr(parent, child, layer.get_base_layer())
            swapped.append((parent, child, layer))
        yield model
    finally:
        for parent, child, layer in reversed(swapped):
            setattr(parent, child, layer)
        with torch.no_grad():
            for _, layer in layers:
                if layer.merged:
                    layer.unmerge()  # PEFT's own state; the weights it leaves are overwritten below
            for parameter, original in saved.values():
                parameter.copy_(original)
