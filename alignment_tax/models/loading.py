"""Loading models by local path or hub id, with one clear line when that fails."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment_tax.data.hub import unreachable_note, use_cache_if_hub_unreachable
from alignment_tax.errors import UserError
from alignment_tax.models.placement import ONE_DEVICE, Placement, attach_to_dispatched, resolved_device_map
from alignment_tax.models.saved_files import check_adapter_files

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def looks_local(name: str) -> bool:
    """A path by its form (``./x``, ``/x``, ``~/x``) or because it exists; anything else may be a hub id."""
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def check_model_folder(folder: Path, what: str = "model") -> None:
    """A local model folder must hold a ``config.json``; an empty one (a failed download or copy) says so."""
    if not folder.is_dir():
        return
    if not any(folder.iterdir()):
        raise UserError(f"{what} folder {folder} is empty")
    if not (folder / "config.json").is_file():
        raise UserError(f"{what} folder {folder} has no config.json: not a transformers model folder")


def _check_source(name: str, what: str) -> None:
    """A path that does not exist is an error; a hub id goes offline at once if the hub is unreachable."""
    if looks_local(name):
        if not Path(name).expanduser().exists():
            raise UserError(f"{what} not found: {name}")
        if what == "model":
            check_model_folder(Path(name).expanduser(), what)
    else:
        use_cache_if_hub_unreachable()


# Heads that put a language-model head on a decoder; an encoder (BertModel, a sentence embedder)
# loads through AutoModelForCausalLM too, as a decoder it never was, and fails much later.
_GENERATIVE_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def check_causal_lm(name_or_path: str) -> None:
    """A local model whose config names only non-generative architectures is not a causal LM."""
    config_path = Path(name_or_path).expanduser() / "config.json"
    if not config_path.is_file():
        return  # a hub id: transformers says what is wrong
    try:
        architectures = json.loads(config_path.read_text(encoding="utf-8")).get("architectures") or []
    except (json.JSONDecodeError, AttributeError):
        raise UserError(f"{config_path}: not a JSON object") from None
    if architectures and not any(str(a).endswith(_GENERATIVE_SUFFIXES) for a in architectures):
        raise UserError(
            f"{name_or_path} is not a causal language model (its config names {', '.join(map(str, architectures))})"
        )


def check_embedder_folder(name_or_path: str) -> None:
    """A local folder without sentence-transformers' ``modules.json`` whose config names a causal LM
    is a language model, not an embedder: sentence-transformers would mean-pool its hidden states
    under a new, untrained pooling head and every similarity would be noise."""
    folder = Path(name_or_path).expanduser()
    if not folder.is_dir() or (folder / "modules.json").is_file() or not (folder / "config.json").is_file():
        return
    try:
        architectures = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (json.JSONDecodeError, AttributeError):
        raise UserError(f"{folder / 'config.json'}: not a JSON object") from None
    if any(str(a).endswith(_GENERATIVE_SUFFIXES) for a in architectures):
        raise UserError(
            f"embedder {name_or_path} is a language model ({', '.join(map(str, architectures))}), not a "
            "sentence-transformers embedder (no modules.json); give --embedder an embedder folder or hub id"
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _load_failure(error: BaseException) -> str:
    return _first_line(error) + unreachable_note()


def load_embedder(name_or_path: str, device: str | None = None):
    """A sentence-transformers model from a folder or a hub id."""
    from sentence_transformers import SentenceTransformer

    _check_source(name_or_path, "embedder")
    check_embedder_folder(name_or_path)
    path = Path(name_or_path).expanduser()
    try:
        return SentenceTransformer(str(path) if path.exists() else name_or_path, device=device)
    except OSError as error:
        raise UserError(f"could not load embedder {name_or_path!r}: {_load_failure(error)}") from error


def resolve_device(device: str) -> str:
    import torch

    if device not in DEVICES:
        raise UserError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but torch sees no CUDA device")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` is bfloat16 on a GPU that supports it and float32 elsewhere.

    bfloat16 on CPU is slow and silently changes results (autocast), so it is never chosen
    automatically there.
    """
    import torch

    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "float32"


def adapter_base(adapter: str) -> str:
    """The base model an adapter names in its ``adapter_config.json``."""
    config_path = Path(adapter).expanduser() / "adapter_config.json"
    if not Path(adapter).expanduser().exists():
        raise UserError(f"adapter not found: {adapter}")
    if not config_path.exists():
        raise UserError(f"{adapter}: not a PEFT adapter folder (no adapter_config.json)")
    check_adapter_files(adapter)
    try:
        base = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except json.JSONDecodeError as error:
        raise UserError(f"{config_path}: invalid JSON: {error}") from error
    if not base:
        raise UserError(f"{config_path}: no base_model_name_or_path; pass --model with the base model")
    return base


@dataclass
class LoadedModel:
    """A causal LM ready to evaluate: ``model`` is a ``PeftModel`` when ``adapter`` is set.

    ``model`` is None when another engine (vLLM, a server) holds the weights and only the tokenizer and
    the model's identity are needed here.
    """

    model: Any
    tokenizer: Any
    name: str
    adapter: str | None
    device: str
    dtype: str
    placement: Placement = ONE_DEVICE

    @property
    def device_map(self) -> dict[str, str | int] | None:
        """Where each module went when the weights are spread (``hf_device_map``); None on one device."""
        return resolved_device_map(self.model) if self.model is not None else None

    @property
    def has_adapter(self) -> bool:
        return self.adapter is not None


def load_tokenizer(name_or_path: str):
    """The ``AutoTokenizer`` of a model folder or hub id."""
    from transformers import AutoTokenizer

    _check_source(name_or_path, "model")
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise UserError(f"could not load the tokenizer of {name_or_path!r}: {_load_failure(error)}") from error


def load_causal_lm(name_or_path: str, device: str = "cpu", dtype: str = "float32", placement: Placement = ONE_DEVICE):
    """``AutoModelForCausalLM`` and ``AutoTokenizer`` from a folder or hub id, in eval mode.

    With a device map in ``placement`` accelerate spreads the weights and ``device`` is not used.
    """
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(name_or_path)
    check_causal_lm(name_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=getattr(torch, dtype), **placement.from_pretrained_kwargs()
        )
    except (OSError, ValueError) as error:
        raise UserError(f"could not load model {name_or_path!r}: {_load_failure(error)}") from error
    if not placement.dispatched:
        model.to(device)
    model.eval()
    return model, tokenizer


_SHAPE = r"(torch\.Size\(\[[^\]]*\]\)|\S+)"
_SIZE_MISMATCH = re.compile(
    rf"size mismatch for ([^:]+): copying a param with shape {_SHAPE} from checkpoint, "
    rf"the shape in current model is {_SHAPE}"
)


def _adapter_mismatch(error: Exception) -> str:
    text = str(error)
    match = _SIZE_MISMATCH.search(text)
    if match:
        name, theirs, ours = match.groups()
        return f"{name.strip()} has shape {theirs} in the adapter but {ours} in the base"
    return _first_line(error)


def attach_adapter(model: Any, adapter: str, base_name: str) -> Any:
    """Wrap ``model`` in the PEFT adapter at ``adapter``, saying what differs when it does not fit.

    On a bf16 or fp16 base the adapter's weights take the base's dtype. PEFT would keep them in
    fp32 (trained adapters are saved so), and the LoRA products in fp32 cost a Qwen3-4B forward
    pass 72% more time on an H200 (bench/drift_profile.py); in the base's dtype they cost 11%.
    A merged adapter, and vLLM's LoRA, compute in the base's dtype too.
    """
    from peft import PeftModel

    check_adapter_files(adapter)  # a damaged file is named here, not deep inside PEFT or safetensors

    def load(base: Any) -> Any:
        return PeftModel.from_pretrained(base, adapter, is_trainable=False, autocast_adapter_dtype=False).eval()

    try:
        network = attach_to_dispatched(model, adapter, load) if resolved_device_map(model) else load(model)
    except (RuntimeError, ValueError, KeyError) as error:
        raise UserError(f"adapter {adapter} does not fit base {base_name}: {_adapter_mismatch(error)}") from error
    cast_adapter_to_base_dtype(network)
    return network


def cast_adapter_to_base_dtype(network: Any) -> None:
    import torch

    dtype = next(network.get_base_model().parameters()).dtype
    if dtype not in (torch.bfloat16, torch.float16):
        return
    for name, parameter in network.named_parameters():
        if "lora_" in name and parameter.dtype != dtype:
            parameter.data = parameter.data.to(dtype)


def check_adapter_fits(base_name: str, adapter: str) -> None:
    """Fail with one line if ``adapter`` does not fit ``base_name``, without loading any weights.

    Engines that load the adapter themselves (vLLM) would otherwise fail deep inside their
    first generation; a model built on PyTorch's meta device has every shape and no data.
    """
    import warnings

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    _check_source(base_name, "model")
    try:
        config = AutoConfig.from_pretrained(base_name)
    except (OSError, ValueError) as error:
        raise UserError(f"could not load the config of {base_name!r}: {_load_failure(error)}") from error
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    with warnings.catch_warnings():
        # Loading an adapter onto meta tensors is a shape check: torch warns, once per LoRA weight,
        # that the copy does nothing. Only that warning is hidden.
        warnings.filterwarnings("ignore", message=r".*copying from a non-meta parameter", category=UserWarning)
        attach_adapter(skeleton, adapter, base_name)


def describe_for_evaluation(model: str | None, adapter: str | None, device: str, dtype: str) -> LoadedModel:
    """What :func:`load_for_evaluation` checks and names, with the tokenizer but no weights."""
    if model is None and adapter is None:
        raise UserError("give --model, --adapter, or both")
    name = model or adapter_base(adapter)
    if adapter is not None:
        check_adapter_fits(name, adapter)
    return LoadedModel(None, load_tokenizer(name), name, adapter, device, dtype)


def load_for_evaluation(
    model: str | None, adapter: str | None, device: str, dtype: str, placement: Placement = ONE_DEVICE
) -> LoadedModel:
    """A full checkpoint, or a base plus a LoRA adapter (base defaults to the adapter's own)."""
    if model is None and adapter is None:
        raise UserError("give --model, --adapter, or both")
    name = model or adapter_base(adapter)
    if adapter is not None:
        adapter_base(adapter)  # fail early on a missing or malformed adapter folder
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    placement.check_devices()
    network, tokenizer = load_causal_lm(name, device, dtype, placement)
    if adapter is not None:
        network = attach_adapter(network, adapter, name)
    return LoadedModel(network, tokenizer, name, adapter, device, dtype, placement)
