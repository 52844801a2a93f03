"""One model over several devices: accelerate's big-model loading (lm-eval's ``parallelize=True``).

``--device-map auto`` lets ``from_pretrained`` fill the GPUs in order, then the CPU, then the
disk, within ``--max-memory``; accelerate's hooks load offloaded weights for each forward pass and
move activations from device to device. Where the weights live changes where numbers are
computed, not what they are (tests/test_offload.py compares every value with the model held
whole).

Two places must then look at the model rather than at its first parameter, which may be a
placeholder on PyTorch's ``meta`` device: where inputs go (:func:`input_device`), and which
device a module computes on (:func:`execution_device`). PEFT's own handling of offloaded bases
does not work with transformers 5 (see :func:`attach_to_dispatched`).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment_tax.errors import UserError

# accelerate's strategies; "auto" is "balanced" in transformers.
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
OFFLOAD_DIR_PREFIX = ".offload-"  # a temporary folder inside the output folder
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_GPU = re.compile(r"^(?:cuda:)?(\d+)$")


def parse_size(text: str, what: str) -> int:
    """``"70GiB"`` → bytes; decimal (GB) and binary (GiB) units, case-insensitive.

    accelerate reads ``"8Gb"`` as gigabits; here every unit is bytes, so the size is passed on as
    a number of bytes.

    >>> parse_size("1.5GiB", "--max-memory 0"), parse_size("500MB", "x"), parse_size("1024", "x")
    (1610612736, 500000000, 1024)
    """
    match = _SIZE.match(str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise UserError(f"{what}: expected a size such as 70GiB, 500MB or a number of bytes, got {text!r}")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise UserError(f"{what}: the size must be above zero, got {text!r}")
    return size


def _device_key(name: str, what: str) -> int | str:
    """A GPU index (``0`` or ``cuda:0``), ``cpu`` or ``mps``, as accelerate names them."""
    name = str(name).strip().lower()
    gpu = _GPU.match(name)
    if gpu:
        return int(gpu.group(1))
    if name in ("cpu", "mps"):
        return name
    raise UserError(f"{what}: unknown device {name!r}; use a GPU index (0, 1, ...), cpu or mps")


def parse_max_memory(text: str) -> dict[str, str]:
    """``"0=70GiB,cpu=100GiB"`` → ``{"0": "70GiB", "cpu": "100GiB"}``, each entry checked.

    >>> parse_max_memory("0=70GiB, cpu=100GiB")
    {'0': '70GiB', 'cpu': '100GiB'}
    """
    budget: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        device, sep, size = pair.partition("=")
        if not sep:
            raise UserError(f"--max-memory expects DEVICE=SIZE[,...] (e.g. 0=70GiB,cpu=100GiB), got {pair!r}")
        key = str(_device_key(device, "--max-memory"))
        parse_size(size, f"--max-memory {key}")
        budget[key] = size.strip()
    if not budget:
        raise UserError("--max-memory is empty; give DEVICE=SIZE[,...] (e.g. 0=70GiB,cpu=100GiB)")
    return budget


def parse_device_map(text: str) -> str | dict[str, Any]:
    """A strategy (``auto``, ``balanced``, ``balanced_low_0``, ``sequential``) or a JSON object mapping
    module names to a GPU index, ``cpu`` or ``disk``."""
    text = text.strip()
    if not text.startswith("{"):
        if text not in DEVICE_MAP_STRATEGIES:
            raise UserError(
                f"--device-map: expected one of {', '.join(DEVICE_MAP_STRATEGIES)} or a JSON object, got {text!r}"
            )
        return text
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"--device-map: invalid JSON ({error})") from None
    check_device_map(mapping)
    return mapping


def check_device_map(device_map: Any) -> None:
    if isinstance(device_map, str):
        parse_device_map(device_map)
        return
    if not isinstance(device_map, dict) or not device_map:
        raise UserError(f"--device-map must be a strategy or a non-empty JSON object, got {device_map!r}")
    for module, device in device_map.items():
        if device != "disk":
            _device_key(device, f"--device-map {module}")


@dataclass(frozen=True)
class Placement:
    """Where ``from_pretrained`` puts the weights; the default (no map) is one device, as before."""

    device_map: str | dict[str, Any] | None = None
    max_memory: dict[str, str] | None = None
    offload_folder: str | None = None

    def __post_init__(self) -> None:
        if self.device_map is None and (self.max_memory or self.offload_folder):
            raise UserError("--max-memory and --offload-folder only apply with --device-map")
        if self.device_map is not None:
            check_device_map(self.device_map)
        for device, size in (self.max_memory or {}).items():
            parse_size(size, f"--max-memory {_device_key(device, '--max-memory')}")

    @property
    def dispatched(self) -> bool:
        return self.device_map is not None

    def check_devices(self) -> None:
        """Every GPU named in the budget or the map is one torch sees (before anything loads)."""
        import torch

        named = [_device_key(d, "--max-memory") for d in self.max_memory or {}]
        if isinstance(self.device_map, dict):
            named += [_device_key(d, "--device-map") for d in self.device_map.values() if d != "disk"]
        count = torch.cuda.device_count()
        for device in named:
            if isinstance(device, int) and device >= count:
                raise UserError(f"GPU {device} was named in --device-map or --max-memory, but torch sees {count}")

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        if self.device_map is None:
            return {}
        kwargs: dict[str, Any] = {"device_map": self.device_map}
        if isinstance(self.device_map, dict):  # JSON gives GPU indices as numbers or "0"; accelerate wants ints
            kwargs["device_map"] = {
                module: device if device == "disk" else _device_key(device, "--device-map")
                for module, device in self.device_map.items()
            }
        if self.max_memory:
            kwargs["max_memory"] = {
                _device_key(device, "--max-memory"): parse_size(size, "--max-memory")
                for device, size in self.max_memory.items()
            }
        if self.offload_folder:
            kwargs["offload_folder"] = self.offload_folder
        return kwargs


ONE_DEVICE = Placement()  # every weight on --device, as without --device-map


@contextmanager
def offload_folder(placement: Placement, output: Path) -> Iterator[Placement]:
    """``placement`` with an offload folder: the user's, or a temporary one inside ``output``,
    removed once the models that read from it are done. transformers writes there only weights it
    cannot read in place from the checkpoint's safetensors files."""
    if not placement.dispatched or placement.offload_folder:
        yield placement
        return
    output.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=OFFLOAD_DIR_PREFIX, dir=output)
    try:
        yield Placement(placement.device_map, placement.max_memory, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def resolved_device_map(model: Any) -> dict[str, str | int] | None:
    """Where each module went (``hf_device_map``), or None for a model on one device."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    device_map = getattr(causal_lm, "hf_device_map", None)
    return dict(device_map) if device_map else None


def execution_device(module: Any) -> Any:
    """The device ``module`` computes on: its accelerate hook's, else its first parameter's.

    An offloaded module's parameters are ``meta`` placeholders; its hook loads them onto the
    execution device (the first GPU, or the CPU) for each call. A module LoRA wraps (the
    embeddings, say) keeps its hook on the wrapped ``base_layer``.
    """
    import torch

    for candidate in (module, getattr(module, "base_layer", None)):
        device = getattr(getattr(candidate, "_hf_hook", None), "execution_device", None)
        if device is not None:
            return torch.device(device) if not isinstance(device, int) else torch.device("cuda", device)
    return next(module.parameters()).device


def input_device(model: Any) -> Any:
    """Where a batch's token ids must go: the device the input embeddings compute on."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    return execution_device(causal_lm.get_input_embeddings())


def attach_to_dispatched(model: Any, adapter: str, attach: Any) -> Any:
    """``attach(model)`` (``PeftModel.from_pretrained`` of ``adapter``) on a base spread by accelerate.

    PEFT 0.21 sees ``hf_device_map`` with ``cpu`` or ``disk`` entries, removes accelerate's hooks
    and dispatches again, which fails under transformers 5 (a meta tensor copied, or a missing
    offload index entry); so the map is hidden while the adapter attaches and the hooks stay.
    LoRA layers on an offloaded base layer then follow its ``meta`` weight and load nothing:
    those are given real storage on the layer's execution device and the adapter loaded again.
    """
    import warnings

    device_map = model.__dict__.pop("hf_device_map")
    try:
        with warnings.catch_warnings():
            # torch's warning, once per LoRA weight of an offloaded layer, that its copy did nothing:
            # those weights are loaded again below.
            warnings.filterwarnings("ignore", message=r".*copying from a non-meta parameter", category=UserWarning)
            network = attach(model)
    finally:
        model.hf_device_map = device_map
    _materialise_lora(network, adapter)
    return network


def _materialise_lora(network: Any, adapter: str) -> None:
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils import load_peft_weights, set_peft_model_state_dict

    placed = False
    for module in network.modules():
        if not isinstance(module, BaseTunerLayer):
            continue
        for name in module.adapter_layer_names:
            layers = getattr(module, name)
            for adapter_name in list(layers):
                item = layers[adapter_name]  # a module (lora_A) or, for an embedding's LoRA, a parameter
                if not any(p.is_meta for p in (item.parameters() if isinstance(item, torch.nn.Module) else [item])):
                    continue
                device = execution_device(module.get_base_layer())
                if isinstance(item, torch.nn.Module):
                    item.to_empty(device=device)
                else:
                    layers[adapter_name] = torch.nn.Parameter(torch.empty_like(item, device=device), item.requires_grad)
                placed = True
    if not placed:
        return
    # The same state dict PeftModel.from_pretrained loaded, copied now into real storage.
    set_peft_model_state_dict(network, load_peft_weights(adapter, device="cpu"), adapter_name=network.active_adapter)
    left = [name for name, p in network.named_parameters() if p.is_meta and "lora_" in name]
    if left:
        raise UserError(f"adapter weights left without values on an offloaded model: {', '.join(left[:3])}")
