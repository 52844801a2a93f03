"""Asking the judge: bounded concurrency, the cache, retries, the call budget and one re-ask.

One *job* is one pair shown in one order. ``concurrency`` workers take jobs from a queue; each
job looks its reply up in the cache, else calls the judge (retrying 429/5xx/timeouts after the
server's Retry-After or an exponential backoff), stores the reply at once, and parses it; an
unreadable reply is asked about once more, in the same conversation. A request that keeps
failing ends the run only if no other call succeeded meanwhile (the server is down), or after
four times as many tries if others did (a flaky server is worth waiting for). Calls that get no
answer at all (timeouts, refused connections) also count over all workers: after
``RetryPolicy.max_unanswered`` in a row with no success between them, the server is taken for
dead and the run stops, so a hung server costs a few ``--timeout`` s, not one per call.

A job whose call another process sharing the cache is making (see :mod:`.cache`) goes back in
the queue and is taken up later, from the cache by then; cached replies count as calls the
judge accepted (the backend's ``note_cached_reply``), so a rerun that only asks again a request
the endpoint refused on its own account treats a second refusal the same way.

Every request sent counts against ``max_calls`` (retries and re-asks included: the budget is
what the server sees). When the budget is spent or the endpoint refuses calls, no new request
starts, the requests in flight finish and are stored, and the run ends with ``stopped`` saying
why: partial results are kept, and a rerun makes only the missing calls.

Usage::

    runner = JudgeRunner(backend, cache, template, concurrency=16)
    asyncio.run(runner.run(jobs))
    # -> {(0, "ab"): Judgement(order="ab", replies=[...], verdict=Verdict(...)), ...}
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from alignment_tax.judge.cache import BUSY, CLAIMED, VerdictCache, cache_key
from alignment_tax.judge.retry import FatalJudgeError, NoAnswer, RejectedRequest, RetryableError, RetryPolicy, SendAgain
from alignment_tax.judge.templates import JudgeTemplate
from alignment_tax.judge.verdicts import Verdict, parse_verdict

ASKS = 2  # the first question and one re-ask after an unreadable reply
BUSY_POLL = 0.05  # seconds a worker waits after finding a key another caller is asking


@dataclass(frozen=True)
class Job:
    pair: int  # index into the pairing's pairs
    order: str  # "ab": A's output shown as candidate 1; "ba": B's
    messages: list[dict[str, str]] = field(hash=False)


@dataclass
class Judgement:
    order: str
    replies: list[str]  # raw replies, the re-ask's second
    verdict: Verdict | None  # None: unreadable after the re-ask, or rejected
    rejected: str | None = None  # why the endpoint refused this request (e.g. too long)


class _Stop(Exception):
    """This worker must not start another request."""


class _Busy(Exception):
    """Another caller sharing the cache is asking this job's question now: come back later."""


class JudgeRunner:
    def __init__(
        self,
        backend,
        cache: VerdictCache,
        template: JudgeTemplate,
        *,
        concurrency: int = 8,
        max_calls: int | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ):
        self.backend, self.cache, self.template = backend, cache, template
        self.concurrency, self.max_calls, self.retry = concurrency, max_calls, retry
        self.calls = 0  # requests sent to the judge by this run, retries and re-asks included
        self.cached = 0  # replies taken from the cache
        self.retries = 0
        self.rejected = 0  # requests the endpoint refused on their own account
        self._answered = 0  # successful calls: is the server alive while one request keeps failing?
        self._unanswered = 0  # calls in a row, over all workers, with no answer at all (NoAnswer)
        self.stopped: str | None = None  # why the run ended early, if it did
        self.fatal = False  # stopped by an error (as opposed to the budget)
        self._stop: asyncio.Event | None = None

    async def run(self, jobs: list[Job]) -> dict[tuple[int, str], Judgement]:
        self._stop = asyncio.Event()
        queue: asyncio.Queue[Job] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        results: dict[tuple[int, str], Judgement] = {}
        self._note_cached_replies(jobs)

        async def worker() -> None:
            while not self._stop.is_set():
                try:
                    job = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    results[job.pair, job.order] = await self._judge(job)
                except _Busy:
                    queue.put_nowait(job)
                    try:
                        await self._pause(BUSY_POLL)
                    except _Stop:
                        return
                except _Stop:
                    return

        await asyncio.gather(*(worker() for _ in range(max(1, min(self.concurrency, len(jobs))))))
        return results

    def _key(self, job: Job, messages: list[dict[str, str]]) -> str:
        return cache_key(self.backend.identity, self.template.label, messages, job.order)

    def _note_cached_replies(self, jobs: list[Job]) -> None:
        """Tell the backend before any call when the cache holds replies of this run's questions:
        the endpoint accepted these prompts before, whatever order the jobs are taken in."""
        note = getattr(self.backend, "note_cached_reply", None)
        if note is not None and any(self.cache.get(self._key(job, job.messages)) is not None for job in jobs):
            note()

    def _from_cache(self, reply: str) -> str:
        self.cached += 1
        note = getattr(self.backend, "note_cached_reply", None)
        if note is not None:
            note()
        return reply

    async def _ask(self, key: str, messages: list[dict[str, str]]) -> str:
        """The reply from the cache, else from the judge under a claim on ``key`` (see :mod:`.cache`)."""
        reply = self.cache.get(key)
        if reply is not None:
            return self._from_cache(reply)
        claim = self.cache.claim(key)
        if claim is BUSY:
            raise _Busy
        if claim is not CLAIMED:  # answered by another process since the look-up
            return self._from_cache(claim)
        try:
            reply = await self._call(messages)
        except BaseException:  # rejected, stopped, cancelled: another caller may ask it
            self.cache.release(key)
            raise
        self.cache.put(key, self.backend.identity, self.template.label, reply)
        return reply

    async def _judge(self, job: Job) -> Judgement:
        messages, replies = job.messages, []
        for _ in range(ASKS):
            try:
                reply = await self._ask(self._key(job, messages), messages)
            except RejectedRequest as error:
                return Judgement(job.order, replies, None, rejected=str(error))
            replies.append(reply)
            verdict = parse_verdict(reply)
            if verdict is not None:
                return Judgement(job.order, replies, verdict)
            messages = self.template.reask_messages(messages, reply)
        return Judgement(job.order, replies, None)

    def _halt(self, reason: str, fatal: bool) -> None:
        if self.stopped is None:  # the first reason is the one to report
            self.stopped, self.fatal = reason, fatal
        self._stop.set()

    async def _call(self, messages: list[dict[str, str]]) -> str:
        failures, answered_before = 0, self._answered
        while True:
            if self._stop.is_set():
                raise _Stop
            if self.max_calls is not None and self.calls >= self.max_calls:
                self._halt(f"--max-calls {self.max_calls} reached", fatal=False)
                raise _Stop
            self.calls += 1  # counted before the await: concurrent workers see it at once
            try:
                reply = await self.backend.complete(messages)
                self._answered += 1
                self._unanswered = 0
                return reply
            except SendAgain:
                continue
            except RejectedRequest:
                self.rejected += 1
                raise
            except FatalJudgeError as error:
                self._halt(str(error), fatal=True)
                raise _Stop from None
            except RetryableError as error:
                failures += 1
                if isinstance(error, NoAnswer):
                    self._unanswered += 1
                    if self._unanswered >= self.retry.max_unanswered:
                        self._halt(
                            f"the judge server looks dead: {self._unanswered} calls in a row got no answer; "
                            f"last: {error}",
                            fatal=True,
                        )
                        raise _Stop from None
                wait = error.retry_after if error.retry_after is not None else self.retry.backoff(failures)
                alive = self._answered > answered_before
                if failures >= self.retry.max_attempts * (4 if alive else 1):
                    self._halt(f"a judge call failed {failures} times in a row; last: {error}", fatal=True)
                    raise _Stop from None
                if wait > self.retry.max_retry_after:
                    self._halt(f"the judge asks to wait {wait:.0f} s before retrying ({error})", fatal=True)
                    raise _Stop from None
                self.retries += 1
                await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        """Sleep before a retry, but wake and give up at once if the run is stopping."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            return
        raise _Stop
