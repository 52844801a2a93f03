"""Resumable model calls: every response is stored the moment it exists.

lm-eval's own ``use_cache`` needs ``sqlitedict`` and keys responses by request alone, so two
models writing to one cache would read each other's answers. Here every response is keyed by the
model identity (weights, adapter, engine, settings) as well as the request, responses are written
through lm-eval's cache hook as each is produced, and a run killed midway makes only the
missing calls when started again.

Beside each generation the cache keeps whether it was *truncated*: stopped by the
``max_gen_toks`` cap rather than by a stop sequence or the end-of-sequence token. lm-eval's
models return only the text, so each engine's raw output is read where it exists (the token
rows of transformers' ``generate``, vLLM's ``finish_reason``, the server's ``finish_reason``) and
queued; the cache hook, which lm-eval calls once per request in the same order, takes the flag
off the queue as it stores the text.

A response is stored under the request it answers, as that request was looked up, not under
whatever arguments the model hands the hook: lm-eval's ``VLLM.generate_until`` hands it a
``gen_kwargs`` of its own making (see :class:`_Answering`), under which a rerun would find nothing.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lm_eval.api.model import hash_args

from alignment_tax.evaluation import data_parallel
from alignment_tax.evaluation.prompt_fit import check_prompts_fit
from alignment_tax.evaluation.request_blocks import generate_in_blocks
from alignment_tax.progress import request_tasks, working_on
from alignment_tax.sqlite_store import SQLiteStore

CACHED_METHODS = ("generate_until", "loglikelihood", "loglikelihood_rolling")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keyed_responses (key TEXT PRIMARY KEY, value TEXT);
-- 1: stopped at the cap; 0: stopped by a stop sequence or EOS. No row: not known.
CREATE TABLE IF NOT EXISTS keyed_truncated (key TEXT PRIMARY KEY, value INTEGER);
"""


def _key(fingerprint: str, method: str, args: Any) -> str:
    return hashlib.sha256(f"{fingerprint}\0{hash_args(method, args)}".encode()).hexdigest()


class GenerationCache:
    """A small SQLite store (:class:`~alignment_tax.sqlite_store.SQLiteStore`) of
    ``(model identity, method, request) → response``.

    The identity is part of every key, so two models' responses can share a file (two runs on one
    output folder, one after the other or at once) and never be read as each other's.
    """

    def __init__(self, path: str | Path, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self._store = SQLiteStore(self.path, _SCHEMA, timeout=60)

    def get(self, method: str, args: Any) -> Any | None:
        value = self._store.lookup("keyed_responses", "value", _key(self.fingerprint, method, args))
        return None if value is None else json.loads(value)

    def put(self, method: str, args: Any, response: Any, truncated: bool | None = None) -> None:
        key = _key(self.fingerprint, method, args)
        value = json.dumps(response, ensure_ascii=False)
        with self._store.transaction():
            self._store.execute("INSERT OR REPLACE INTO keyed_responses VALUES (?, ?)", (key, value))
            if truncated is not None:
                self._store.execute("INSERT OR REPLACE INTO keyed_truncated VALUES (?, ?)", (key, int(truncated)))

    def truncated(self, args: Any) -> bool | None:
        """Whether the generation for ``args`` (context, gen_kwargs) stopped at its cap; None if unknown."""
        value = self._store.lookup("keyed_truncated", "value", _key(self.fingerprint, "generate_until", args))
        return None if value is None else bool(value)

    def __len__(self) -> int:
        """Responses of this identity are not counted apart from others': the file's total."""
        return self._store.count("keyed_responses")

    def close(self) -> None:
        self._store.close()


class _Answering:
    """The requests one call into the model answers, with their arguments as they were looked up.

    lm-eval's models do not all hand the cache hook the request's own arguments. HFLM and the API
    models pass ``(context, gen_kwargs)`` through (a batch's first ``gen_kwargs``, equal to each
    request's), but vLLM's ``generate_until`` (0.4.13) passes
    ``(context, kwargs | {"until": ..., "max_gen_toks": ...})``: the sampling defaults filled in,
    EOS added to ``until``, the cap cut to fit the context. Stored under those, no response is
    found by a rerun, which looks up the request's own arguments. So each write is mapped back to
    a request: the one with exactly these arguments, else (for ``generate_until``, whose
    ``gen_kwargs`` engines rewrite) the next unanswered one with the same context. That order is
    the models' own: each sorts same-context requests stably (by length), so they are answered
    in the order given. The arguments are copied before the model sees them, so a model that
    changes them in place cannot change the key either.
    """

    def __init__(self, method: str, requests: Sequence[Any]):
        self.method = method
        self.originals = [copy.deepcopy(request.args) for request in requests]
        self.answered = [False] * len(self.originals)
        self.exact: dict[str, deque[int]] = {}
        self.by_context: dict[str, deque[int]] = {}
        for index, args in enumerate(self.originals):
            self.exact.setdefault(hash_args(method, args), deque()).append(index)
            if method == "generate_until":
                self.by_context.setdefault(hash_args(method, tuple(args)[:1]), deque()).append(index)

    def original(self, method: str, args: Any) -> Any:
        """The arguments of the request this write answers; ``args`` itself if it answers none of them."""
        if method != self.method:
            return args
        index = self._take(self.exact.get(hash_args(method, args)))
        if index is None and method == "generate_until":
            index = self._take(self.by_context.get(hash_args(method, tuple(args)[:1])))
        return args if index is None else self.originals[index]

    def _take(self, queue: deque[int] | None) -> int | None:
        while queue:
            index = queue.popleft()
            if not self.answered[index]:  # an index sits in two queues; the other may have taken it
                self.answered[index] = True
                return index
        return None


class _CacheHook:
    """What lm-eval's models call with each response as soon as it is produced."""

    def __init__(self, cache: GenerationCache, truncation: deque):
        self.cache = cache
        self.truncation = truncation
        self.methods = CACHED_METHODS
        self.answering: _Answering | None = None  # set while the model answers missing requests

    def add_partial(self, method: str, args: Any, response: Any) -> None:
        if method not in self.methods:
            return
        truncated = None
        if method == "generate_until" and self.truncation:
            truncated = self.truncation.popleft()
        if self.answering is not None:
            args = self.answering.original(method, args)
        self.cache.put(method, args, _plain(response), truncated)


def hf_rows_truncated(
    rows: Sequence[Sequence[int]], new_tokens: int, cap: int, finish_ids: Iterable[int], stop_found: Sequence[bool]
) -> list[bool]:
    """For transformers' ``generate`` output: which rows stopped at the cap.

    ``rows`` are the generated tokens (context removed), ``new_tokens`` how many positions the
    batch generated. A row that finished earlier ends in padding or EOS (both in
    ``finish_ids``); a row that met a stop string has ``stop_found``. Only a batch that ran the
    full ``cap`` can hold a truncated row.

    >>> hf_rows_truncated([[5, 6, 7], [5, 2, 0]], 3, 3, {0, 2}, [False, False])
    [True, False]
    >>> hf_rows_truncated([[5, 6]], 2, 3, {0}, [False])
    [False]
    """
    finish = set(finish_ids)
    if new_tokens < cap:
        return [False] * len(rows)
    return [bool(row) and row[-1] not in finish and not found for row, found in zip(rows, stop_found)]


def _finish_ids(lm: Any) -> set[int]:
    ids = {lm.tokenizer.pad_token_id, lm.tokenizer.eos_token_id}
    configured = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return {token for token in ids if token is not None}


def _plain(response: Any) -> Any:
    # loglikelihood responses are (float, bool) tuples; JSON turns them into lists.
    return list(response) if isinstance(response, tuple) else response


def _restore(method: str, response: Any) -> Any:
    return tuple(response) if method == "loglikelihood" else response


class ResumableMixin:
    """Mixed in front of an lm-eval model class: serve cached responses, cache new ones."""

    generation_cache: GenerationCache
    # True for HFLM, whose batches decide its outputs; vLLM and the server batch by themselves.
    batches_in_blocks = False

    def attach_cache(self, cache: GenerationCache) -> None:
        self.generation_cache = cache
        self._truncation: deque = deque()
        hook = _CacheHook(cache, self._truncation)
        if not data_parallel.is_main():
            # Each rank stores the generations it makes itself; log-likelihoods are computed on
            # every rank alike, and rank 0's copy is the one stored.
            hook.methods = ("generate_until",)
        self.set_cache_hook(hook)

    def _queue_truncation(self, flags: Iterable[bool]) -> None:
        """The flags of the batch just generated, in request order (what a failed batch left is dropped)."""
        queue = getattr(self, "_truncation", None)
        if queue is not None:
            queue.clear()
            queue.extend(flags)

    def _model_generate(self, *args: Any, **kwargs: Any) -> Any:
        # Both lm-eval callers pass keywords: vLLM's generate_until (requests, generate=True,
        # sampling_params) and HFLM's (context, attention_mask, stop, max_length).
        output = super()._model_generate(*args, **kwargs)
        if kwargs.get("generate") is True:
            self._queue_truncation(request.outputs[0].finish_reason == "length" for request in output)
        elif "context" in kwargs and "max_length" in kwargs:
            self._queue_truncation(
                self._hf_truncation(output, kwargs["context"], kwargs["max_length"], kwargs.get("stop") or [])
            )
        return output

    def _hf_truncation(self, output: Any, context: Any, max_length: int, stop: list[str]) -> list[bool]:
        start = context.shape[1]
        rows = output[:, start:].tolist()
        texts = [self.tok_decode(row) for row in rows]
        stop_found = [any(s and s in text for s in stop) for text in texts]
        return hf_rows_truncated(rows, output.shape[1] - start, max_length - start, _finish_ids(self), stop_found)

    def _resume(self, method: str, requests: list, **kwargs) -> list:
        if method == "generate_until":
            check_prompts_fit(self, requests)  # before anything is generated: never a cut prompt
        cached = [self.generation_cache.get(method, request.args) for request in requests]
        if method == "generate_until" and self._in_blocks():
            generate = getattr(super(), method)

            def answer(part: list) -> list:
                with self._filed_by_request(method, part):
                    return generate(part, **kwargs)

            fresh = generate_in_blocks(self, requests, cached, answer)
            return [_restore(method, response) for response in fresh]
        missing = [request for request, response in zip(requests, cached) if response is None]
        # The bar names the requests' tasks; the answers are filed under the requests as looked up here.
        with working_on(request_tasks(missing)), self._filed_by_request(method, missing):
            fresh = iter(getattr(super(), method)(missing, **kwargs) if missing else [])
        return [_restore(method, next(fresh) if response is None else response) for response in cached]

    def _in_blocks(self) -> bool:
        """Whether generation runs in whole batches of the one-process schedule (request_blocks)."""
        return self.batches_in_blocks and isinstance(getattr(self, "batch_size", None), int)

    @contextmanager
    def _filed_by_request(self, method: str, requests: list) -> Iterator[None]:
        """While the parent answers ``requests``, what it writes is stored under their arguments."""
        hook = getattr(self, "cache_hook", None)
        if not isinstance(hook, _CacheHook) or not requests:
            yield
            return
        hook.answering = _Answering(method, requests)
        try:
            yield
        finally:
            hook.answering = None

    def generate_until(self, requests, disable_tqdm: bool = False):
        return self._resume("generate_until", requests, disable_tqdm=disable_tqdm)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._resume("loglikelihood", requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self._resume("loglikelihood_rolling", requests, disable_tqdm=disable_tqdm)


def resumable(lm_class: type, batches_in_blocks: bool = False) -> type:
    """``lm_class`` with :class:`ResumableMixin` in front (HFLM, or vLLM's model class)."""
    return type(f"Resumable{lm_class.__name__}", (ResumableMixin, lm_class), {"batches_in_blocks": batches_in_blocks})
