"""The ``server`` engine: generations from an OpenAI-compatible ``/v1/completions`` endpoint.

For a model already served by ``vllm serve`` (one GPU, ``--data-parallel-size`` over several, or
another machine), SGLang, TGI or ``transformers serve``. Prompts are rendered and tokenised here,
with the same chat template and settings as the other engines, and sent as token ids (lm-eval's
``local-completions`` model), so the server only generates; to a server that takes only text
(``transformers serve``) the same chat-templated text goes instead (``--prompt-format``; see
:mod:`.served_lm`). A LoRA adapter is one of the server's model names (``vllm serve BASE
--enable-lora --lora-modules NAME=ADAPTER``): the candidate is asked under that name and the base
under the base's own.

The server's weights cannot be checked from here: the run records the local ``--model`` and
``--adapter`` it is told they are (their hashes key the caches), and the served names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.evaluation.generation_cache import GenerationCache, resumable
from alignment_tax.evaluation.roles import Role, require_chat_template
from alignment_tax.evaluation.served_lm import PROMPT_FORMATS, completions_class, one_line
from alignment_tax.models.loading import LoadedModel
from alignment_tax.urls import public_url


@dataclass
class ServerOptions:
    base_url: str | None = None  # the API root, e.g. http://127.0.0.1:8000/v1
    model: str | None = None  # the candidate's served name (default: --model, when there is no adapter)
    base_model: str | None = None  # the base's served name (default: the base's own name)
    api_key_env: str = "OPENAI_API_KEY"  # unset is fine for a server started without --api-key
    concurrency: int = 8
    timeout: int = 600
    max_retries: int = 3
    # How prompts are sent: "tokens" (ids, as vllm serve and SGLang take them), "text" (the
    # chat-templated text, for transformers serve), or "auto": ids until the server refuses them
    # for text, then text. After a run, "auto" reads what the server took (results.json records it).
    prompt_format: str = "auto"

    def __post_init__(self) -> None:
        if self.prompt_format not in PROMPT_FORMATS:
            raise UserError(f"--prompt-format must be one of {', '.join(PROMPT_FORMATS)}, got {self.prompt_format!r}")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise UserError(f"--base-url must start with http:// or https://, got {self.base_url!r}")
        if self.concurrency < 1:
            raise UserError(f"--concurrency must be at least 1, got {self.concurrency}")


def served_models(base_url: str, api_key: str, timeout: float = 30.0) -> list[str]:
    """The model names ``GET {base_url}/models`` lists, or one line saying why there are none."""
    import requests

    shown = public_url(base_url)
    try:
        response = requests.get(
            f"{base_url.rstrip('/')}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )
    except requests.RequestException as error:
        raise UserError(f"cannot reach the generation server at {shown}: {one_line(error)}") from None
    if not response.ok:
        hint = " (is --api-key-env set to the server's key?)" if response.status_code in (401, 403) else ""
        raise UserError(f"the generation server at {shown} answered HTTP {response.status_code} to GET /models{hint}")
    try:
        return [str(entry["id"]) for entry in response.json()["data"]]
    except (ValueError, LookupError, TypeError):
        raise UserError(
            f"{shown}/models is not an OpenAI model list: is --base-url the API root (often .../v1)?"
        ) from None


class ServerEngine:
    """Asks an OpenAI-compatible server; every role is a served model name."""

    name = "server"

    def __init__(self, loaded: LoadedModel, options: Any):
        settings: ServerOptions = options.server
        if not settings.base_url:
            raise UserError("--engine server needs --base-url (the server's API root, e.g. http://127.0.0.1:8000/v1)")
        if options.enable_thinking:
            # The server applies the stop sequences while the model is still thinking.
            raise UserError("--enable-thinking is not supported with --engine server; use --engine hf or vllm")
        self.loaded, self.options, self.settings = loaded, options, settings
        self.candidate = Role(loaded.name, loaded.adapter)
        self.api_key = os.environ.get(settings.api_key_env, "").strip() or "EMPTY"
        self._available = served_models(settings.base_url, self.api_key)
        # Every name is checked before anything is asked (the base is asked first).
        self.served_name(self.candidate)
        if options.base is not None:
            self.served_name(Role(loaded.name if options.base == "auto" else options.base))

    def served_name(self, role: Role) -> str:
        if role == self.candidate and (self.settings.model or role.adapter is None):
            name = self.settings.model or role.model
        elif role == self.candidate:
            raise UserError(
                "--served-model: name the adapter is served under (vllm serve BASE --enable-lora --lora-modules NAME=ADAPTER)"
            )
        else:
            name = self.settings.base_model or role.model
        if name not in self._available:
            raise UserError(
                f"the generation server at {public_url(self.settings.base_url)} serves {', '.join(self._available) or 'no model'}, "
                f"not {name!r} (set --served-model / --served-base)"
            )
        return name

    def identity(self, role: Role) -> dict[str, Any]:
        return {"served_as": self.served_name(role)}

    @contextmanager
    def lm(self, role: Role, cache: GenerationCache) -> Iterator[Any]:
        from lm_eval.models.utils import resolve_max_length
        from transformers import AutoConfig

        require_chat_template(self.loaded.tokenizer, role.model)
        config = AutoConfig.from_pretrained(self.loaded.name)
        lm = resumable(completions_class())(
            model=self.served_name(role),
            base_url=f"{self.settings.base_url.rstrip('/')}/completions",
            tokenizer=self.loaded.name,
            tokenizer_backend="huggingface",
            settings=self.settings,
            concurrency=self.settings.concurrency,
            max_retries=self.settings.max_retries,
            timeout=self.settings.timeout,
            seed=self.options.seed,
            # +1: lm-eval keeps one position of it for the first generated token.
            max_length=resolve_max_length(config, self.loaded.tokenizer) + 1,
            enable_thinking=False,
            api_key=self.api_key,
        )
        lm.attach_cache(cache)
        yield lm

    def close(self) -> None:
        pass
