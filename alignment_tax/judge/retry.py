"""What a judge backend raises, and how long to wait before trying a call again.

Backends translate their own failures into three exceptions so that one retry loop (in
:mod:`alignment_tax.judge.runner`) counts every request the server sees, whatever the backend:

* :class:`RetryableError`: 429, 408/409, 5xx, timeouts, dropped connections. Retried with
  exponential backoff and jitter, or after exactly the server's ``Retry-After``. Its subclass
  :class:`NoAnswer` (a timeout, a refused or dropped connection: the server said nothing) also
  counts towards giving up on a dead server (``RetryPolicy.max_unanswered``).
* :class:`SendAgain`: the request was rejected for an optional feature (JSON mode, say) that
  the backend has now switched off; sent again at once, and not counted as a failure.
* :class:`RejectedRequest`: the endpoint refuses this one request (too long for its context,
  filtered) after accepting others like it; that order of that pair is left without a verdict
  (counted as rejected, not cached, so a rerun asks again) and the run goes on.
* :class:`FatalJudgeError`: the endpoint refuses the call (bad key, unknown model, ...);
  the run stops, keeping every verdict obtained so far.

>>> policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
>>> [round(policy.backoff(n, jitter=1.0), 2) for n in (1, 2, 3, 6)]
[0.5, 1.0, 2.0, 8.0]
>>> parse_retry_after({"retry-after": "2"}), parse_retry_after({"retry-after-ms": "150"})
(2.0, 0.15)
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass


class RetryableError(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class NoAnswer(RetryableError):
    """No HTTP answer at all (timeout, connection refused or dropped): the server may be dead."""


class SendAgain(Exception):
    """Send the same request again now: the backend changed what it sends."""


class RejectedRequest(Exception):
    """The endpoint refuses this request only; others are answered."""


class FatalJudgeError(Exception):
    """The endpoint refuses calls; retrying will not help."""


@dataclass(frozen=True)
class RetryPolicy:
    # Tries of one request, the first included, while no other call succeeds: a server that
    # answers nothing is given up on after this many; one that answers others (rate limits,
    # a flaky replica) is retried up to `max_attempts * 4` times, so a long run survives it.
    max_attempts: int = 6
    base_delay: float = 0.5  # seconds before the first retry, doubled for each further one
    max_delay: float = 30.0
    max_retry_after: float = 300.0  # a server asking for longer than this is treated as refusing
    # Calls in a row, over all workers, that got no answer at all (NoAnswer) with no success in
    # between: the server is taken for dead. This bounds the time a hung server costs to about
    # `max_unanswered` timeouts plus the backoff (one worker), or a single timeout (six or more).
    max_unanswered: int = 6

    def backoff(self, failures: int, jitter: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure of one request.

        The jitter (75–100% of the nominal delay) keeps concurrent callers that failed
        together from retrying in lockstep.
        """
        nominal = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
        return nominal * (0.75 + 0.25 * random.random() if jitter is None else jitter)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``Retry-After-Ms`` or ``Retry-After`` (seconds or an HTTP date), if given."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
        if name == "retry-after":
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            return max(0.0, when.timestamp() - time.time())
    return None
