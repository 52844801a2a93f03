"""lm-eval's own ``VLLM`` model class, run on a CPU: only the vLLM engine underneath is replaced.

vLLM needs a GPU and is not installed here. :func:`vllm_standin` puts a small ``vllm`` package in
its place for the length of a test (the names lm-eval's ``vllm_causallms`` imports, a
distribution record so that ``version("vllm")`` answers, and an ``LLM`` that generates greedily
with transformers) and returns :class:`VLLMOnTransformers`, a subclass of lm-eval's real
``VLLM`` that only records how it was built. Everything between the requests and the engine is
lm-eval's code, unchanged: its request building (``modify_gen_kwargs``: the sampling defaults,
EOS added to ``until``, ``max_gen_toks`` cut to fit the context), its ordering, its stop
handling, and the arguments it hands the cache hook. That is what the ``vllm`` engine's cache
and truncation flags are tested against.

What the stand-in engine does as vLLM does: stops at EOS (its text left out) or at the first
stop string (the text cut before it), else at ``max_tokens`` with ``finish_reason == "length"``;
refuses a LoRA request if not built with ``enable_lora`` or if its rank is above ``max_lora_rank``;
serves the adapter's base when a generation comes with no LoRA request. What it does not do:
sampling, prompt log-probabilities (lm-eval's loglikelihood path; no task here uses it),
batching, or anything about vLLM's kernels.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The oldest vLLM the project's extra allows: lm-eval picks its import paths by this version
# (0.10 keeps get_tokenizer in transformers_utils and the chat-template resolver in entrypoints).
VLLM_VERSION = "0.10.2"

# Every prompt the stand-in engine generated for, across engines: what a test counts.
GENERATED: list[dict[str, Any]] = []

_SAMPLING_FIELDS = {
    "n": 1,
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 0,
    "seed": None,
    "max_tokens": 16,
    "min_tokens": 0,
    "stop": None,
    "stop_token_ids": None,
    "include_stop_str_in_output": False,
    "skip_special_tokens": True,
    "spaces_between_special_tokens": True,
    "prompt_logprobs": None,
    "logprobs": None,
    "detokenize": True,
}


class SamplingParams:
    """vLLM's ``SamplingParams``: an unknown field is a ``TypeError``, as there."""

    def __init__(self, **fields: Any):
        unknown = set(fields) - set(_SAMPLING_FIELDS)
        if unknown:
            raise TypeError(f"SamplingParams got unexpected fields {sorted(unknown)}")
        for name, default in _SAMPLING_FIELDS.items():
            setattr(self, name, fields.get(name, default))


def TokensPrompt(prompt_token_ids: list[int]) -> dict[str, Any]:  # noqa: N802 (vLLM's name: a TypedDict)
    return {"prompt_token_ids": list(prompt_token_ids)}


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" (EOS or a stop string) or "length" (max_tokens reached)
    stop_reason: str | int | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)
    finished: bool = True


class LLM:
    """``vllm.LLM`` as lm-eval's ``VLLM`` uses it, generating greedily with transformers, one prompt at a time."""

    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        enable_lora: bool = False,
        max_lora_rank: int = 16,
        max_model_len: int | None = None,
        **engine: Any,
    ):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        config = AutoConfig.from_pretrained(model)
        self.network = AutoModelForCausalLM.from_pretrained(model, dtype=_torch_dtype(dtype)).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.enable_lora, self.max_lora_rank = enable_lora, max_lora_rank
        self.lora_path: str | None = None
        self.engine_args = dict(engine)
        limit = max_model_len or config.max_position_embeddings
        self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=limit))
        stop_ids = {self.tokenizer.eos_token_id, *_as_list(self.network.generation_config.eos_token_id)}
        self.stop_ids = {token for token in stop_ids if token is not None}

    def generate(
        self,
        prompts: list[dict[str, Any]],
        sampling_params: SamplingParams | list[SamplingParams],
        use_tqdm: bool = True,
        lora_request: LoRARequest | None = None,
    ) -> list[RequestOutput]:
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        self._load_lora(lora_request)
        outputs = []
        for number, (prompt, setting) in enumerate(zip(prompts, params, strict=True)):
            if setting.prompt_logprobs is not None or setting.temperature != 0 or setting.n != 1:
                raise NotImplementedError("the stand-in engine only generates greedily (temperature 0, n 1)")
            GENERATED.append({"prompt_token_ids": prompt["prompt_token_ids"], "lora": lora_request})
            outputs.append(
                RequestOutput(
                    str(number), prompt["prompt_token_ids"], [self._complete(prompt, setting, lora_request is not None)]
                )
            )
        return outputs

    def _load_lora(self, lora_request: LoRARequest | None) -> None:
        from peft import PeftModel

        if lora_request is None:
            return
        if not self.enable_lora:
            raise ValueError("LoRA is not enabled: build the engine with enable_lora=True")
        rank = json.loads((Path(lora_request.lora_path) / "adapter_config.json").read_text(encoding="utf-8"))["r"]
        if rank > self.max_lora_rank:
            raise ValueError(f"LoRA rank {rank} is greater than max_lora_rank {self.max_lora_rank}")
        if self.lora_path is None:
            self.network = PeftModel.from_pretrained(self.network, lora_request.lora_path).eval()
            self.lora_path = lora_request.lora_path
        elif self.lora_path != lora_request.lora_path:
            raise ValueError(f"the stand-in engine holds one adapter ({self.lora_path}), not {lora_request.lora_path}")

    def _complete(self, prompt: dict[str, Any], setting: SamplingParams, with_lora: bool) -> CompletionOutput:
        import torch

        ids = torch.tensor([prompt["prompt_token_ids"]])
        # No LoRA request on an engine that holds an adapter: the base's answers, as vLLM gives them.
        adapter_off = not with_lora and hasattr(self.network, "disable_adapter")
        with torch.no_grad(), self.network.disable_adapter() if adapter_off else nullcontext():
            generated = self.network.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=setting.max_tokens,
                do_sample=False,
                eos_token_id=sorted(self.stop_ids),
                pad_token_id=self.tokenizer.pad_token_id,
            )[0, ids.shape[1] :].tolist()
        skip = setting.skip_special_tokens
        # vLLM checks after each new token: EOS ends it (its text left out), then the first stop string.
        for count in range(1, len(generated) + 1):
            if generated[count - 1] in self.stop_ids:
                return CompletionOutput(
                    0,
                    self.tokenizer.decode(generated[: count - 1], skip_special_tokens=skip),
                    generated[:count],
                    "stop",
                )
            text = self.tokenizer.decode(generated[:count], skip_special_tokens=skip)
            found = [(text.find(stop), stop) for stop in setting.stop or [] if stop and stop in text]
            if found:
                at, stop = min(found)
                return CompletionOutput(0, text[:at], generated[:count], "stop", stop)
        return CompletionOutput(0, self.tokenizer.decode(generated, skip_special_tokens=skip), generated, "length")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _torch_dtype(dtype: str) -> Any:
    import torch

    return "auto" if dtype == "auto" else getattr(torch, dtype)


def get_tokenizer(name: str, tokenizer_mode: str = "auto", trust_remote_code: bool = False, revision=None, **kwargs):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code, revision=revision, **kwargs)


def resolve_hf_chat_template(tokenizer: Any, chat_template: str | None, tools: Any, **kwargs: Any) -> str | None:
    """vLLM's resolution for a transformers tokenizer with no template given: the tokenizer's own."""
    return chat_template or tokenizer.chat_template


def _modules() -> dict[str, types.ModuleType]:
    from importlib.machinery import ModuleSpec

    names = {
        "vllm": {"LLM": LLM, "SamplingParams": SamplingParams, "TokensPrompt": TokensPrompt},
        "vllm.lora": {},
        "vllm.lora.request": {"LoRARequest": LoRARequest},
        "vllm.entrypoints": {},
        "vllm.entrypoints.chat_utils": {"resolve_hf_chat_template": resolve_hf_chat_template},
        "vllm.transformers_utils": {},
        "vllm.transformers_utils.tokenizer": {"get_tokenizer": get_tokenizer},
    }
    modules = {}
    for name, members in names.items():
        module = types.ModuleType(name)
        # find_spec("vllm"), which lm-eval's VLLM calls, reads a loaded module's __spec__.
        module.__spec__ = ModuleSpec(name, None, is_package=True)
        module.__path__ = []  # a package: "vllm.renderers" and "vllm.tokenizers" are then simply absent
        module.__dict__.update(members)
        modules[name] = module
    return modules


_LM_EVAL_MODULE = "lm_eval.models.vllm_causallms"
_imported: dict[str, Any] = {}


@contextmanager
def vllm_standin(distribution_dir: Path) -> Iterator[type]:
    """While open: the stand-in ``vllm`` is importable, and :class:`VLLMOnTransformers` is given.

    ``distribution_dir`` receives the ``vllm`` distribution record. On the way out every module
    and registry entry is put back, so a real vLLM (on a GPU machine) is what later tests see.
    """
    from lm_eval.api.registry import model_registry

    record = Path(distribution_dir) / f"vllm-{VLLM_VERSION}.dist-info"
    record.mkdir(parents=True, exist_ok=True)
    (record / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {VLLM_VERSION}\n", encoding="utf-8")
    replaced = {name: sys.modules.get(name) for name in [*_modules(), _LM_EVAL_MODULE]}
    registered = model_registry._objs.get("vllm")  # lm-eval refuses a second class under one name
    sys.path.insert(0, str(distribution_dir))
    importlib.invalidate_caches()
    try:
        sys.modules.update(_modules())
        if not _imported:  # imported once: a second import would register "vllm" again
            sys.modules.pop(_LM_EVAL_MODULE, None)
            module = importlib.import_module(_LM_EVAL_MODULE)
            _imported.update(module=module, standin=_define(module.VLLM))
        # So that the package's own vllm_lm_class() (the CLI's path) finds lm-eval's class on this engine.
        sys.modules[_LM_EVAL_MODULE] = _imported["module"]
        yield _imported["standin"]
    finally:
        sys.path.remove(str(distribution_dir))
        importlib.invalidate_caches()
        for name, module in replaced.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        if registered is None:
            model_registry._objs.pop("vllm", None)
        else:
            model_registry._objs["vllm"] = registered


def _define(vllm_class: type) -> type:
    class VLLMOnTransformers(vllm_class):
        """lm-eval's ``VLLM``, unchanged but for recording each engine built (``built``)."""

        built: list[dict[str, Any]] = []

        def __init__(self, pretrained: str, **args: Any):
            VLLMOnTransformers.built.append({"pretrained": pretrained, **args})
            super().__init__(pretrained=pretrained, **args)

    return VLLMOnTransformers
