"""A LoRA adapter at strength ``s``: its update to every layer multiplied by ``s``, written as an adapter folder.

LoRA weights: multiplying every ``B`` by ``s`` scales ``scaling · B·A·x`` by exactly ``s``.

Weights an adapter replaces whole (``modules_to_save``, the rows of ``trainable_token_indices``,
an embedding PEFT saved beside a LoRA on it, a base bias it trained) are not an update to scale:
PEFT puts the saved copy in place of the base's. Their update is ``saved − base``, so strength
``s`` is ``base + s·(saved − base)``, which needs the base's weights:

- ``s = 0``: the replaced weights are left out of the copy (and out of its config), so the base's
  own are used: the base, exactly, for any module.
- ``s = 1``: the adapter, byte for byte.
- any other ``s``: exact only for a single layer whose output is affine in its weights (a linear
  layer, an embedding, a norm): there the interpolated weights give ``base output + s·(update)``.
  A block of layers (``modules_to_save=["mlp"]``) is not affine in its weights, so the
  interpolation would be some other model, not the update scaled; it is refused in one line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.models.saved_files import check_adapter_files

WEIGHTS = "adapter_model.safetensors"
_PREFIX = "base_model.model."
_TOKENS = ".token_adapter.trainable_tokens_delta"


def _is_lora(name: str) -> bool:
    return any(part.startswith(("lora_", "lora_embedding_")) for part in name.split("."))


def _is_b(name: str) -> bool:
    return "lora_B" in name or "lora_embedding_B" in name


class AdapterScaler:
    """One adapter, read and checked once, written at as many strengths as asked for."""

    def __init__(self, adapter: str | Path, base: str | None = None):
        from safetensors.torch import load_file

        self.source = Path(adapter)
        config_path, weights_path = self.source / "adapter_config.json", self.source / WEIGHTS
        if not config_path.is_file() or not weights_path.is_file():
            raise UserError(
                f"{self.source} is not a PEFT adapter folder with {WEIGHTS} (a .bin adapter: re-save it with PEFT)"
            )
        check_adapter_files(self.source)  # a config that does not parse, weights cut short: one line
        self.config = json.loads(config_path.read_text(encoding="utf-8"))
        if self.config.get("peft_type", "LORA") != "LORA" or self.config.get("use_dora"):
            raise UserError(f"{self.source}: sweep scales LoRA adapters (not {self.config.get('peft_type')}, not DoRA)")
        self.base = base or self.config.get("base_model_name_or_path")
        self.tensors = load_file(str(weights_path))
        if not any(_is_b(name) for name in self.tensors):
            raise UserError(f"{self.source}: no LoRA B matrices found in {WEIGHTS}")
        # Weights PEFT puts in place of the base's (everything that is not a LoRA A or B).
        self.replaced = [name for name in self.tensors if not _is_lora(name)]
        self._base_values: dict[str, Any] | None = None  # loaded once, at the first strength that needs them

    def check(self, scales: list[float]) -> None:
        """Refuse, before anything is written or loaded, a strength that cannot be had exactly."""
        if not self.replaced or all(scale in (0.0, 1.0) for scale in scales):
            return
        scale = next(s for s in scales if s not in (0.0, 1.0))
        self._base_weights(scale, self._base_model(skeleton=True))

    def write(self, scale: float, out: str | Path) -> Path:
        """The adapter at strength ``scale`` in ``out`` (created); returns ``out``."""
        import torch
        from safetensors.torch import save_file

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if scale == 1.0:  # the adapter itself, byte for byte
            shutil.copyfile(self.source / "adapter_config.json", out / "adapter_config.json")
            shutil.copyfile(self.source / WEIGHTS, out / WEIGHTS)
            return out
        config = dict(self.config)
        tensors = {}
        for name, tensor in self.tensors.items():
            if _is_b(name):
                tensors[name] = (tensor.to(torch.float32) * scale).to(tensor.dtype)
            elif name not in self.replaced:
                tensors[name] = tensor
            elif scale != 0.0:  # at 0 a replaced weight is left out: the base's own is the base exactly
                if self._base_values is None:
                    self._base_values = self._base_weights(scale, self._base_model(skeleton=False))
                base = self._base_values[name].to(torch.float32)
                tensors[name] = (base + scale * (tensor.to(torch.float32) - base)).to(tensor.dtype)
        if scale == 0.0:
            # Without these the loaded model wraps nothing in place of the base's modules and rows.
            config["modules_to_save"] = None
            config["trainable_token_indices"] = None
        (out / "adapter_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        save_file(tensors, str(out / WEIGHTS), metadata={"format": "pt"})
        return out

    def _base_weights(self, scale: float, model: Any) -> dict[str, Any]:
        """The base's value of every replaced weight; refuses a module that cannot be scaled exactly."""
        modules = dict(model.named_modules())
        # state_dict, not named_parameters: it names a tied weight (lm_head) under both its names.
        parameters = {name: tensor.detach() for name, tensor in model.state_dict(keep_vars=True).items()}
        values = {}
        for name in self.replaced:
            module_name, value = self._base_value(name, parameters)
            module_name = self._replaced_module(module_name)
            if module_name in modules and list(modules[module_name].children()):
                raise UserError(
                    f"{self.source}: strength {scale:g} cannot be had exactly: the adapter replaces all of "
                    f"{module_name} ({type(modules[module_name]).__name__}, modules_to_save), a block whose "
                    "output is not linear in its weights; sweep such an adapter at strengths 0 and 1 only"
                )
            if value.shape != self.tensors[name].shape:
                raise UserError(
                    f"{self.source}: strength {scale:g} cannot be had exactly: {name} has shape "
                    f"{tuple(self.tensors[name].shape)} in the adapter but {tuple(value.shape)} in the base "
                    f"{self.base} (a resized vocabulary?); sweep it at strengths 0 and 1 only"
                )
            values[name] = value
        return values

    def _base_value(self, name: str, parameters: dict[str, Any]) -> tuple[str, Any]:
        """(the module that owns it, the base's value) for one replaced weight of the adapter."""
        key = name.removeprefix(_PREFIX)
        if key.endswith(_TOKENS):  # PEFT saves the new rows, not their difference from the base's
            module_name = key.removesuffix(_TOKENS)
            rows = self._token_indices(module_name)
            weight = parameters.get(f"{module_name}.weight")
            if weight is None or rows is None:
                raise UserError(f"{self.source}: {name} names no embedding of {self.base} with known token rows")
            return module_name, weight[rows]
        if key not in parameters:
            raise UserError(f"{self.source}: {name} replaces a weight {self.base} does not have ({key})")
        return key.rpartition(".")[0], parameters[key]

    def _replaced_module(self, owner: str) -> str:
        """The ``modules_to_save`` entry ``owner`` lies in (the entry is what PEFT replaces whole), else ``owner``."""
        entries = self.config.get("modules_to_save") or []
        parts = owner.split(".")
        for end in range(1, len(parts) + 1):
            candidate = ".".join(parts[:end])
            if any(candidate == entry or candidate.endswith("." + entry) for entry in entries):
                return candidate
        return owner

    def _token_indices(self, module_name: str) -> list[int] | None:
        indices = self.config.get("trainable_token_indices")
        if isinstance(indices, dict):  # {"embed_tokens": [...]}: keyed by the module's own name
            return next((rows for key, rows in indices.items() if module_name.split(".")[-1] == key), None)
        return indices

    def _base_model(self, skeleton: bool) -> Any:
        """The base (transformers ties its weights: a tied ``lm_head``); a ``skeleton`` has shapes, no data."""
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        from alignment_tax.models.loading import check_model_folder, looks_local

        if not self.base:
            raise UserError(f"{self.source}: no base_model_name_or_path; pass --model with the base model")
        if looks_local(self.base):
            check_model_folder(Path(self.base).expanduser())
        try:
            if skeleton:
                with torch.device("meta"):
                    return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(self.base))
            return AutoModelForCausalLM.from_pretrained(self.base, dtype="auto")
        except (OSError, ValueError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UserError(f"could not load base {self.base!r} for the adapter's replaced weights: {first}") from None


def scale_adapter(adapter: str | Path, scale: float, out: str | Path, base: str | None = None) -> Path:
    """Write ``adapter`` with its update multiplied by ``scale`` into ``out`` and return ``out``."""
    scaler = AdapterScaler(adapter, base)
    scaler.check([scale])
    return scaler.write(scale, out)
