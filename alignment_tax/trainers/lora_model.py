"""The model a run trains: the base LM and tokenizer, its LoRA adapter (new or continued), and their counts."""

from __future__ import annotations

import json
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.trainers.devices import model_dtype


def load_lm_for_training(model: str | None, adapter: str | None, precision: str, padding_side: str):
    """The base LM and tokenizer (fp32 or bf16 weights, on CPU; the trainer places them), and the base's name."""
    from alignment_tax.models.loading import adapter_base, load_causal_lm

    if model is None and adapter is None:
        raise UserError("give --model (the base model), and --adapter to continue from an adapter")
    name = model or adapter_base(adapter)
    if adapter is not None:
        adapter_base(adapter)  # a missing or malformed adapter folder fails before the model loads
    network, tokenizer = load_causal_lm(name, "cpu", model_dtype(precision))
    tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(tokenizer, "chat_template", None) is None:
        raise UserError(f"{name}: the tokenizer has no chat template; training prompts are chat turns")
    return network, tokenizer, name


def attach_trainable_adapter(network: Any, adapter: str, base_name: str) -> Any:
    """``PeftModel.from_pretrained(..., is_trainable=True)``: without it nothing trains, silently."""
    from peft import PeftModel

    from alignment_tax.models.loading import _adapter_mismatch

    try:
        return PeftModel.from_pretrained(network, adapter, is_trainable=True)
    except (RuntimeError, ValueError, KeyError) as error:
        raise UserError(f"adapter {adapter} does not fit base {base_name}: {_adapter_mismatch(error)}") from error


def lora_config(lora: dict[str, Any]) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=int(lora["r"]),
        lora_alpha=int(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        # A string is PEFT's own: a regex over module names, or "all-linear".
        target_modules=targets if isinstance(targets := lora["target_modules"], str) else list(targets),
        bias=lora.get("bias", "none"),
        task_type="CAUSAL_LM",
    )


def peft_record(model: Any) -> dict[str, Any] | None:
    config = getattr(model, "peft_config", {}).get("default") if hasattr(model, "peft_config") else None
    if config is None:
        return None
    return json.loads(json.dumps(config.to_dict(), default=lambda v: sorted(v) if isinstance(v, set) else str(v)))


def trainable_parameters(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": int(trainable), "total": int(total)}
