"""Who produces the responses: transformers in this process (``hf``), vLLM (``vllm``), or an
OpenAI-compatible server (``server``, :mod:`alignment_tax.evaluation.served`).

All three are lm-eval model classes behind the same generation cache, so tasks, prompts,
scoring and resumption do not depend on the engine. An engine hands out one lm-eval model per
*role*: the candidate (a checkpoint, or a base with its LoRA adapter) and its base. A base that
is the adapter's own is answered by the same weights with the adapter switched off (``hf``,
``vllm``) or by the server's model of that name (``server``).
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.evaluation.generation_cache import GenerationCache, resumable
from alignment_tax.evaluation.roles import Role, require_chat_template
from alignment_tax.evaluation.served import ServerEngine
from alignment_tax.models.loading import LoadedModel, load_causal_lm
from alignment_tax.models.merged_adapter import merge_blocker, merged_adapter
from alignment_tax.models.placement import input_device

ENGINES = ("hf", "vllm", "server")
THINK_END = "</think>"
# The LoRA ranks vLLM can allocate for (vllm.config.LoRAConfig.max_lora_rank).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


@dataclass
class VLLMOptions:
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1  # >1 runs replicas through Ray, as lm-eval does
    # Below vLLM's 0.9 so that the embedder, and the transformers copy that drift needs,
    # still fit beside the engine on one card.
    gpu_memory_utilization: float = 0.85
    max_model_len: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # any other vllm.LLM argument

    def __post_init__(self) -> None:
        if not 0 < self.gpu_memory_utilization <= 1:
            raise UserError(f"--gpu-memory-utilization must be in (0, 1], got {self.gpu_memory_utilization}")


def parse_engine_args(pairs: list[str]) -> dict[str, Any]:
    """``["enforce_eager=true", "quantization=fp8"]`` → ``{"enforce_eager": True, "quantization": "fp8"}``.

    >>> parse_engine_args(["max_num_seqs=64", "kv_cache_dtype=fp8"])
    {'max_num_seqs': 64, 'kv_cache_dtype': 'fp8'}
    """
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"engine argument {pair!r}: expected KEY=VALUE")
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value
    return parsed


class HFEngine:
    """transformers in this process; the candidate's weights are already loaded."""

    name = "hf"

    def __init__(self, loaded: LoadedModel, options: Any):
        self.loaded = loaded
        self.options = options
        # How the candidate's adapter generates, for results.json: {"merged": True}, or False and why.
        self.adapter_merge = _adapter_merge(loaded, options)

    @property
    def _merged(self) -> bool:
        return self.adapter_merge is not None and self.adapter_merge["merged"]

    @contextmanager
    def lm(self, role: Role, cache: GenerationCache) -> Iterator[Any]:
        loaded = self.loaded
        if role == Role(loaded.name, loaded.adapter):
            # Folded in, the adapter costs nothing per step; the weights are restored exactly on the way out.
            with merged_adapter(loaded.model) if self._merged else nullcontext():
                yield self._wrap(loaded.model, loaded.tokenizer, cache)
        elif loaded.has_adapter and role == Role(loaded.name):
            with loaded.model.disable_adapter():
                yield self._wrap(loaded.model, loaded.tokenizer, cache)
        else:
            network, tokenizer = load_causal_lm(role.model, loaded.device, loaded.dtype, loaded.placement)
            try:
                yield self._wrap(network, tokenizer, cache)
            finally:
                del network
                gc.collect()

    def _wrap(self, network: Any, tokenizer: Any, cache: GenerationCache) -> Any:
        from lm_eval.models.huggingface import HFLM

        require_chat_template(tokenizer, getattr(tokenizer, "name_or_path", "model"))
        lm = resumable(HFLM, batches_in_blocks=True)(
            pretrained=network,
            tokenizer=tokenizer,
            batch_size=self.options.batch_size,
            device=self.loaded.device,
            enable_thinking=self.options.enable_thinking,
            think_end_token=THINK_END,
        )
        # HFLM puts inputs on `model.device`, its first parameter's: a meta placeholder when offloaded.
        lm._device = input_device(network)
        lm.attach_cache(cache)
        return lm

    def identity(self, role: Role) -> dict[str, Any]:
        # A folded adapter rounds differently from the unmerged one, so it keys its own generations. Only
        # the candidate's: the base's weights are restored bit for bit, so its outputs (and key) are unchanged.
        if self._merged and role == Role(self.loaded.name, self.loaded.adapter):
            return {"adapter_merged": True}
        return {}

    def close(self) -> None:
        pass


def _adapter_merge(loaded: LoadedModel, options: Any) -> dict[str, Any] | None:
    """None without an adapter; else whether the candidate generates with it folded in, and why not."""
    if not loaded.has_adapter or loaded.model is None:
        return None
    if not getattr(options, "merge_adapter", True):
        return {"merged": False, "reason": "--no-merge-adapter"}
    reason = merge_blocker(loaded.model)
    if reason is not None:
        logging.getLogger(__name__).info("generating with the adapter unmerged: %s", reason)
        return {"merged": False, "reason": reason}
    return {"merged": True}


def vllm_lora_rank(adapter: str) -> int:
    """The smallest rank vLLM allocates for that holds this adapter's rank."""
    config = json.loads((Path(adapter).expanduser() / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("use_dora"):
        raise UserError(f"{adapter}: vLLM does not serve DoRA adapters; use --engine hf")
    ranks = [int(config.get("r", 8)), *(int(r) for r in (config.get("rank_pattern") or {}).values())]
    for allowed in VLLM_LORA_RANKS:
        if allowed >= max(ranks):
            return allowed
    raise UserError(f"{adapter}: LoRA rank {max(ranks)} is above the {VLLM_LORA_RANKS[-1]} vLLM supports")


def vllm_model_args(role: Role, lora: str | None, dtype: str, options: Any) -> dict[str, Any]:
    """Arguments for lm-eval's ``VLLM`` model: one engine for ``role.model``, with ``lora`` loadable."""
    settings: VLLMOptions = options.vllm
    args: dict[str, Any] = {
        "pretrained": role.model,
        "dtype": dtype,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "data_parallel_size": settings.data_parallel_size,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "seed": options.seed,
        # vLLM schedules its own batches; lm-eval's "auto" hands it every request at once.
        "batch_size": "auto",
        "enable_thinking": options.enable_thinking,
        "think_end_token": THINK_END,
    }
    if settings.max_model_len is not None:
        args["max_model_len"] = settings.max_model_len
    if lora is not None:
        args.update(lora_local_path=str(Path(lora).expanduser().resolve()), max_lora_rank=vllm_lora_rank(lora))
    args.update(settings.extra)
    return args


def vllm_lm_class() -> type:
    """lm-eval's vLLM model class, or one clear line where vLLM is not installed."""
    from importlib.util import find_spec

    if find_spec("vllm") is None:
        raise UserError('--engine vllm needs vLLM on a GPU machine: pip install "alignment-tax[vllm]"')
    from lm_eval.models.vllm_causallms import VLLM

    return VLLM


class VLLMEngine:
    """vLLM in this process. One engine per base model: the candidate's adapter is loaded as a
    LoRA request, and the adapter's own base is the same engine with no request."""

    name = "vllm"

    def __init__(self, candidate: Role, dtype: str, options: Any, lm_class: type | None = None):
        self.candidate = candidate
        self.dtype = dtype
        self.options = options
        self._lm_class = lm_class
        self._engine: Any = None
        self._engine_model: str | None = None

    def _build(self, model: str) -> Any:
        lora = self.candidate.adapter if model == self.candidate.model else None
        args = vllm_model_args(Role(model), lora, self.dtype, self.options)
        lm_class = self._lm_class or vllm_lm_class()
        logging.getLogger(__name__).info("starting vLLM for %s", model)
        return resumable(lm_class)(**args)

    @contextmanager
    def lm(self, role: Role, cache: GenerationCache) -> Iterator[Any]:
        if role.adapter is not None and role != self.candidate:
            raise ValueError(f"this engine serves the adapter {self.candidate.adapter}, not {role.adapter}")
        if self._engine_model != role.model:
            self.close()
            self._engine, self._engine_model = self._build(role.model), role.model
        require_chat_template(self._engine.tokenizer, role.model)
        lora_request = self._engine.lora_request
        if role.adapter is None:
            self._engine.lora_request = None  # the base: same weights, adapter off
        self._engine.attach_cache(cache)
        try:
            yield self._engine
        finally:
            self._engine.lora_request = lora_request

    def identity(self, role: Role) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Give the engine's GPU memory back (drift loads the model again with transformers)."""
        if self._engine is None:
            return
        engine, self._engine, self._engine_model = self._engine, None, None
        core = getattr(getattr(getattr(engine, "model", None), "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del engine
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def build_engine(loaded: LoadedModel, options: Any, lm_class: type | None = None) -> Any:
    """The engine ``options.engine`` names; each has ``lm(role, cache)``, ``identity(role)`` and ``close()``."""
    if options.engine == "hf":
        return HFEngine(loaded, options)
    if options.engine == "vllm":
        return VLLMEngine(Role(loaded.name, loaded.adapter), loaded.dtype, options, lm_class)
    if options.engine == "server":
        return ServerEngine(loaded, options)
    raise UserError(f"unknown engine {options.engine!r}; choose one of {', '.join(ENGINES)}")
