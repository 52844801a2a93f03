"""The lm-eval model behind ``--engine server``: lm-eval's ``local-completions``, asked our way.

What lm-eval's ``LocalCompletionsAPI`` does as it is, and why this class changes it:

- Prompts go as token ids (``tokenized_requests=True``), which ``vllm serve`` and SGLang take;
  ``transformers serve`` answers ``400 prompt must be a string.``. With ``--prompt-format text``
  (or ``auto`` on such a refusal) the chat-templated text is sent instead, exactly the text the
  token ids were made from, so the server's tokenizer gives the same ids (:func:`text_prompt`).
- lm-eval retries every failure (a 400 three times too) and gathers its asyncio tasks so that the
  first failure leaves the others running: each of them then ends in a "Task exception was never
  retrieved" traceback. Here a refusal (a 4xx) is not retried, the first failure cancels the
  rest, and every task's outcome is collected, so a failure is one line from the CLI.
- A server that stops on a string matched across the prompt's end (transformers' stop strings
  see the whole sequence: a prompt ending in ``\\n`` stops ``\\n\\n`` at the first ``\\n``) would
  answer less than the other engines: such stops are left to this side (:func:`server_stops`),
  which cuts every answer at its stop sequences as the hf engine does (:func:`cut_at_stops`).
"""

from __future__ import annotations

import asyncio
import copy
import re
import sys
from typing import Any

from alignment_tax.errors import UserError
from alignment_tax.urls import public_url

PROMPT_FORMATS = ("auto", "tokens", "text")


class ServerRefused(Exception):
    """A 4xx: the server will give the same answer to the same request; not retried."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail

    @property
    def wants_text(self) -> bool:
        """The refusal says prompts must be text (transformers serve: "prompt must be a string.")."""
        return self.status in (400, 422) and bool(re.search(r"prompt.*\b(string|str)\b", self.detail, re.I | re.S))


class ServerFailed(Exception):
    """A 5xx, 408 or 429: worth another try."""


def completions_class() -> type:
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    class ServedCompletions(LocalCompletionsAPI):
        """lm-eval's ``local-completions`` with this package's chat templating, prompts and error lines."""

        def __init__(self, *, enable_thinking: bool, api_key: str, settings: Any, concurrency: int, **kwargs: Any):
            self._enable_thinking = enable_thinking
            self._api_key = api_key
            # The engine's ServerOptions, shared by its roles: "auto" becomes what the server took
            # at its first answer or refusal, so a second role asks the same way at once and
            # results.json records what was sent.
            self._settings = settings
            self._in_flight = concurrency
            # lm-eval sends one request at a time (its synchronous path, retrying every error)
            # when num_concurrent <= 1: at 2 or more every request goes through
            # get_batched_requests below, which holds the real limit.
            super().__init__(
                tokenized_requests=settings.prompt_format != "text", num_concurrent=max(2, concurrency), **kwargs
            )

        @property
        def api_key(self) -> str:
            return self._api_key

        def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
            return self.tokenizer.apply_chat_template(
                chat_history,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=not add_generation_prompt,
                enable_thinking=self._enable_thinking,
            )

        def generate_until(self, requests, disable_tqdm: bool = False):
            try:
                try:
                    return super().generate_until(requests, disable_tqdm)
                except ServerRefused as refusal:
                    if not (self._settings.prompt_format == "auto" and refusal.wants_text):
                        raise
                    self._switch_to_text(refusal)
                    return super().generate_until(requests, disable_tqdm)
            except ServerRefused as refusal:
                hint = ""
                if refusal.wants_text and self.tokenized_requests:
                    hint = " (it takes text prompts: --prompt-format text or auto)"
                raise UserError(
                    f"the generation server {public_url(self.base_url)} refused a request: "
                    f"{one_line(refusal)}{hint}; the responses received so far are cached"
                ) from None
            except Exception as error:  # requests', aiohttp's and tenacity's errors alike
                if not _is_transport_error(error):
                    raise
                raise UserError(
                    f"the generation server {public_url(self.base_url)} failed: {one_line(error)}; the responses "
                    "received so far are cached, and a rerun asks only for the rest"
                ) from None

        def _switch_to_text(self, refusal: ServerRefused) -> None:
            self._settings.prompt_format = "text"
            self.tokenized_requests = False
            print(
                f"alignment-tax evaluate: note: {public_url(self.base_url)} takes no token ids "
                f"({one_line(refusal)}); sending the chat-templated text instead (--prompt-format text "
                "skips this try)",
                file=sys.stderr,
                flush=True,
            )

        async def get_batched_requests(self, requests, cache_keys, *, generate=True, ctxlens=None, **kwargs):
            if not generate:  # log-likelihoods: lm-eval's own path (this package's tasks generate)
                return await super().get_batched_requests(
                    requests, cache_keys, generate=generate, ctxlens=ctxlens, **kwargs
                )
            import aiohttp
            import tenacity
            from lm_eval.models import api_models

            retrying = tenacity.retry(
                stop=tenacity.stop_after_attempt(self.max_retries),
                wait=tenacity.wait_exponential(multiplier=0.5, min=1, max=10),
                # tenacity catches BaseException: a request cancelled after the batch's first
                # failure (asyncio.CancelledError) would otherwise be sent again.
                retry=tenacity.retry_if_exception(
                    lambda error: isinstance(error, Exception) and not isinstance(error, ServerRefused)
                ),
                reraise=True,
            )
            limit = asyncio.Semaphore(self._in_flight)
            bar = api_models.tqdm(total=len(requests), desc="Requesting API")
            connector = aiohttp.TCPConnector(limit=self._in_flight)
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                ask = retrying(self._ask)
                tasks = [
                    asyncio.create_task(ask(session, limit, request, key, kwargs.get("gen_kwargs") or {}))
                    for request, key in zip(requests, cache_keys)
                ]
                for task in tasks:
                    task.add_done_callback(lambda done: _count_answered(done, bar))
                try:
                    return await asyncio.gather(*tasks)
                finally:
                    # The first failure ends the batch: the others are cancelled and all are
                    # awaited, so that no task is left with an exception nobody retrieves.
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    bar.close()

        async def _ask(self, session, limit, request, cache_key, gen_kwargs: dict) -> list[str]:
            from lm_eval.models.api_models import LMEVAL_MODEL_NONE_ANSWER_PLACEHOLDER

            gen_kwargs = copy.deepcopy(gen_kwargs)
            until = [stop for stop in gen_kwargs.get("until") or [] if stop]
            prompt = self.create_message([request])
            payload = self._create_payload(prompt, generate=True, gen_kwargs=gen_kwargs, seed=self._seed)
            if not self.tokenized_requests:
                payload["prompt"] = text_prompt(self.tokenizer, prompt)
                stops = server_stops(payload.pop("stop", None), prompt)
                if stops:  # transformers serve fails (500) on an empty list
                    payload["stop"] = stops
            async with limit, session.post(self.base_url, json=payload, headers=self.header) as response:
                if response.status >= 500 or response.status in (408, 429):
                    raise ServerFailed(f"HTTP {response.status}: {_detail(await response.text())}")
                if not response.ok:
                    raise ServerRefused(response.status, _detail(await response.text()))
                outputs = await response.json(content_type=None)
            if self._settings.prompt_format == "auto":
                self._settings.prompt_format = "tokens" if self.tokenized_requests else "text"
            (text,) = self.parse_generations(outputs=outputs)  # one prompt, one choice
            (reason,) = finish_reasons(outputs)
            text, stopped = cut_at_stops(LMEVAL_MODEL_NONE_ANSWER_PLACEHOLDER if text is None else text, until)
            # Queued right before the cache hook takes it, with no await between: tasks cannot interleave here.
            self._queue_truncation([reason == "length" and not stopped])
            self.cache_hook.add_partial("generate_until", cache_key, text)
            return [text]

    return ServedCompletions


def _count_answered(task: asyncio.Task, bar: Any) -> None:
    if not task.cancelled() and task.exception() is None:
        bar.update(1)


def text_prompt(tokenizer: Any, text: str) -> str:
    """The text to send so that a server tokenising it with its defaults gets the ids the other engines use.

    The other engines tokenise the chat-templated text without adding special tokens (the
    template holds them); a server tokenises it with ``add_special_tokens=True``. Most chat
    tokenizers (Qwen's, this package's tiny one) add nothing, and the text goes as it is; one that
    adds a BOS the template already wrote gets the text without its leading BOS.
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer(text)["input_ids"] == ids:
        return text
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and tokenizer(text[len(bos) :])["input_ids"] == ids:
        return text[len(bos) :]
    raise UserError(
        "--prompt-format text: a server tokenising these prompts would add special tokens to what the chat template "
        "wrote, so its answers could differ from the other engines'; use a server that takes token ids"
    )


def server_stops(stops: list[str] | None, prompt: str) -> list[str]:
    """The stop sequences a server can be given without stopping early on the prompt's own tail.

    >>> server_stops(["\\n\\n", "</s>"], "<|im_start|>assistant\\n")
    ['</s>']
    """
    return [stop for stop in stops or [] if not any(prompt.endswith(stop[:k]) for k in range(1, len(stop)))]


def cut_at_stops(text: str, until: list[str]) -> tuple[str, bool]:
    """``text`` up to its first stop sequence, as lm-eval's hf model cuts it, and whether one was found.

    >>> cut_at_stops("答案\\n\\n下一题", ["\\n\\n"])
    ('答案', True)
    """
    found = False
    for stop in until:
        if stop and stop in text:
            text, found = text.split(stop)[0], True
    return text, found


def finish_reasons(outputs: Any) -> list[str | None]:
    """Each choice's ``finish_reason``, in the order lm-eval's ``parse_generations`` gives the texts.

    >>> finish_reasons({"choices": [{"index": 1, "finish_reason": "stop"}, {"index": 0, "finish_reason": "length"}]})
    ['length', 'stop']
    """
    reasons: list[str | None] = []
    for output in outputs if isinstance(outputs, list) else [outputs]:
        ordered: list[str | None] = [None] * len(output["choices"])
        for choice in output["choices"]:
            ordered[choice["index"]] = choice.get("finish_reason")
        reasons.extend(ordered)
    return reasons


def _detail(body: str) -> str:
    """The server's own words from an error body: FastAPI's ``detail``, OpenAI's ``error.message``."""
    import json

    try:
        parsed = json.loads(body)
    except ValueError:
        return one_line(body) if body.strip() else "(empty body)"
    if isinstance(parsed, dict):
        error = parsed.get("error")
        for found in (parsed.get("detail"), error.get("message") if isinstance(error, dict) else error):
            if found:
                return one_line(found if isinstance(found, str) else json.dumps(found))
    return one_line(body)


def _is_transport_error(error: BaseException) -> bool:
    import aiohttp
    import requests
    import tenacity

    return isinstance(
        error,
        (ServerFailed, requests.RequestException, aiohttp.ClientError, tenacity.RetryError, asyncio.TimeoutError),
    )


def one_line(error: BaseException | str) -> str:
    text = " ".join(str(error).split())
    return (text or type(error).__name__)[:300]
