"""A judge behind any OpenAI-compatible endpoint (OpenAI, vLLM, SGLang, Ollama, ...).

The key is read from an environment variable and lives only in the client object: it is never
part of a cache key, a record, a result or a message (error text from the server is redacted
before it goes anywhere, as some servers echo the key they were given).

The client's own retries are off (``max_retries=0``): the runner's loop retries instead, so
that every request the server sees passes through one budget (``--max-calls``) and one count.

JSON mode and ``temperature=0`` are asked for until the endpoint rejects them: a 400/422 before
any call has succeeded drops the option the error names (JSON mode first when it names none)
and the call is sent again. Calls are not held back to probe first (that would cost one full
judge latency on every run): a server without JSON mode costs at most one rejected call per
call in flight at the start, and none on the servers that have it (OpenAI, vLLM, SGLang, Ollama).

>>> resolve_api_key("http://127.0.0.1:8000/v1", "SOME_UNSET_VARIABLE_X")   # a local server
'EMPTY'
>>> is_local_url("http://localhost:11434/v1"), is_local_url("https://api.openai.com/v1")
(True, False)
"""

from __future__ import annotations

import os

from alignment_tax.errors import UserError
from alignment_tax.judge.retry import (
    FatalJudgeError,
    NoAnswer,
    RejectedRequest,
    RetryableError,
    SendAgain,
    parse_retry_after,
)
from alignment_tax.urls import is_local_url, public_url

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DUMMY_KEY = "EMPTY"  # what vLLM and friends accept when started without --api-key
_RETRYABLE_STATUS = {408, 409, 429}
# What a server answers when one request is at fault (too long, filtered), not the endpoint.
_BAD_REQUEST_STATUS = {400, 413, 422}
_OPTIONAL = {"response_format": {"type": "json_object"}, "temperature": 0}


def resolve_api_key(base_url: str, env_var: str) -> str:
    """The key from ``env_var``; a dummy one for a local server; else a :class:`UserError`."""
    key = os.environ.get(env_var, "").strip()
    if key:
        return key
    if is_local_url(base_url):
        return DUMMY_KEY
    raise UserError(
        f"no API key: environment variable {env_var} is not set, and {public_url(base_url)} is not a local "
        "server (set it, or name another variable with --api-key-env)"
    )


def _http_response_class():
    """The HTTP library's response class: httpx2 for openai 3.x, httpx before."""
    try:
        import httpx2

        return httpx2.Response
    except ImportError:  # pragma: no cover - older openai releases
        import httpx

        return httpx.Response


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret and secret != DUMMY_KEY else text


class OpenAIJudge:
    """``await judge.complete(messages)`` → the reply text, or one of :mod:`.retry`'s errors."""

    def __init__(self, model: str, base_url: str, api_key: str, timeout: float = 120.0, max_tokens: int | None = None):
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        self.model = model
        # What the cache key records (the key is never part of it); a cap can cut a reply short,
        # so a capped judge's replies are its own (and uncapped ones keep their earlier keys).
        self.identity = model if max_tokens is None else f"{model} (max_tokens={max_tokens})"
        # Sent only when asked for: OpenAI's reasoning models refuse max_tokens.
        self._fixed = {} if max_tokens is None else {"max_tokens": max_tokens}
        self.base_url = public_url(base_url)
        self.timeout = timeout
        self._secret = api_key
        http_client = None
        if base_url.startswith("http://"):
            # No TLS is spoken, so the CA bundle (70 ms or more to load) is not needed; redirects
            # are refused so that the key can never follow one to an unverified https host.
            http_client = DefaultAsyncHttpxClient(verify=False, follow_redirects=False)
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0, http_client=http_client
        )
        self.options = dict(_OPTIONAL)
        self._accepted = False  # a call with the current options has succeeded
        self._accepted_before = False  # this judge answered these prompts before (cached replies)

    def note_cached_reply(self) -> None:
        """A cached reply of this judge counts as an accepted call: a later 400 is then one request's
        fault (a rerun after a per-item refusal), unless it names an option this endpoint lacks."""
        self._accepted_before = True

    async def complete(self, messages: list[dict[str, str]]) -> str:
        import openai

        sent = dict(self.options)
        body = {"model": self.model, "messages": messages, **self._fixed, **sent}
        try:
            # The client's documented way to make a custom request (client.post, raw response)
            # rather than chat.completions.create: the same base URL, auth, timeout and errors,
            # without create()'s type-driven walk over the messages (a no-op for plain text) and
            # the pydantic model of the reply: ~1 ms of CPU per call together, a third of the
            # client's cost, and what bounds throughput at high concurrency on a small machine.
            response = await self._client.post("/chat/completions", cast_to=_http_response_class(), body=body)
        except openai.APIStatusError as error:
            raise self._translate(error.status_code, error, sent) from None
        except openai.APITimeoutError:
            raise NoAnswer(f"no answer from {self.base_url} within {self.timeout:g} s (--timeout)") from None
        except openai.APIConnectionError as error:
            cause = error.__cause__
            detail = f"{type(cause).__name__}: {cause}" if cause else str(error)
            raise NoAnswer(f"cannot reach the judge at {self.base_url} ({detail})") from None
        try:
            choices = response.json()["choices"]
            message = choices[0]["message"] if choices else {}  # no choice: a filtered reply, say
        except (ValueError, LookupError, TypeError):  # an HTML page, say: the wrong URL
            raise FatalJudgeError(
                f"{self.base_url} did not answer with a chat completion: is --base-url the API root (often .../v1)?"
            ) from None
        if sent == self.options:
            self._accepted = True
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else ""  # None (a refusal, say) reads as unreadable

    def _translate(self, status: int, error, sent: dict) -> Exception:
        body = getattr(error, "body", None)
        # The server's own words: OpenAI's error.message, or FastAPI's detail (transformers serve).
        detail = (body.get("message") or body.get("detail")) if isinstance(body, dict) else None
        message = " ".join(redact(str(detail or error), self._secret).split())[:300]
        if status in _RETRYABLE_STATUS or status >= 500:
            return RetryableError(f"HTTP {status}: {message}", parse_retry_after(error.response.headers))
        if status in (400, 422) and sent != self.options:
            return SendAgain()  # another call has dropped an option since this one left
        named = [name for name in sent if name in message]
        if status in (400, 422) and sent and not self._accepted and (named or not self._accepted_before):
            for name in named or [next(iter(sent))]:
                del self.options[name]
            return SendAgain()
        if status in _BAD_REQUEST_STATUS and (self._accepted or self._accepted_before):
            # The same options were accepted before: the fault is this request's own.
            return RejectedRequest(f"HTTP {status}: {message}")
        hint = {401: " (is the key right?)", 403: " (is the key allowed this model?)", 404: " (model or URL wrong?)"}
        return FatalJudgeError(
            f"the judge endpoint {self.base_url} refused the call: HTTP {status}: {message}{hint.get(status, '')}"
        )

    async def close(self) -> None:
        await self._client.close()
