"""The one retry policy for everything webqa asks over the network: page fetches, search
engines and OpenAI-compatible model servers.

Built on tenacity. A try that fails in a way worth retrying raises ``Retryable`` (a
status ``retryable_status`` names, a dropped connection, a timeout), carrying the
server's ``Retry-After`` if it sent one. ``RetryPolicy.call`` then:

* retries at most ``retries`` times after the first try;
* waits the server's ``Retry-After`` (delta-seconds or an HTTP date) capped at
  ``max_wait``, else ``backoff`` doubled at each retry (0.5, 1, 2 s ...), also capped; no
  jitter, so that limits and tests are exact;
* never starts a wait that would end past the caller's deadline (``time_left``): it fails
  at once instead, so a server asking for an hour costs nothing;
* gives up with ``GaveUp``, naming the last failure and why, which each caller turns
  into its own one-line error (FetchError, SearchError, ModelError).

Any other exception passes through at once. Imports nothing of webqa's.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import tenacity

T = TypeVar("T")

# Statuses worth another try: request timeout, conflict (a busy model server's lock),
# too early, rate limited, and every server error.
_RETRY_STATUSES = frozenset({408, 409, 425, 429})


def retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying (see ``_RETRY_STATUSES``, and 5xx)."""
    return status in _RETRY_STATUSES or status >= 500


class Retryable(Exception):
    """A failure worth retrying, with the server's wish (seconds) if it said one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def raise_if_retryable(status: int, message: str, headers: Mapping[str, str]) -> None:
    """Raise ``Retryable(message)`` for a status worth retrying, with the wait the
    response's ``Retry-After`` header asks for."""
    if retryable_status(status):
        raise Retryable(message, parse_retry_after(headers.get("retry-after")))


class GaveUp(Exception):
    """No more tries: ``last`` is the last failure, after ``attempts`` tries; when
    ``out_of_time``, the next wait would have passed the deadline."""

    def __init__(self, last: Retryable, attempts: int, *, out_of_time: bool) -> None:
        super().__init__(str(last))
        self.last = last
        self.attempts = attempts
        self.out_of_time = out_of_time

    def why(self, deadline: float) -> str:
        """Why it stopped, for a message: ``deadline`` is the caller's limit in seconds."""
        if self.out_of_time:
            return f"no time left to retry within {deadline:g} s"
        return f"gave up after {self.attempts} attempts"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None
    when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _forever() -> float:
    return math.inf


@dataclass(frozen=True)
class RetryPolicy:
    """How many retries and how long between them (see the module docstring)."""

    retries: int = 3
    backoff: float = 0.5
    max_wait: float = 30.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        """The wait before retry number ``retry`` (1 for the first)."""
        if retry_after is not None:
            return min(retry_after, self.max_wait)
        return min(self.backoff * 2 ** (retry - 1), self.max_wait)

    def call(self, attempt: Callable[[], T], *, time_left: Callable[[], float] = _forever) -> T:
        """``attempt()``'s value, trying again while it raises ``Retryable``; raises
        ``GaveUp`` after the last retry or when the next wait would outlast
        ``time_left()`` seconds."""

        def wait(state: tenacity.RetryCallState) -> float:
            return self.delay(state.attempt_number, _failure(state).retry_after)

        def stop(state: tenacity.RetryCallState) -> bool:
            return state.attempt_number > self.retries or time_left() <= state.upcoming_sleep

        def give_up(state: tenacity.RetryCallState) -> T:
            failure = _failure(state)
            tries = state.attempt_number
            raise GaveUp(failure, tries, out_of_time=tries <= self.retries) from failure

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Retryable),
            wait=wait,
            stop=stop,
            retry_error_callback=give_up,
            sleep=time.sleep,
        )
        return retrying(attempt)


def _failure(state: tenacity.RetryCallState) -> Retryable:
    error = state.outcome.exception() if state.outcome is not None else None
    assert isinstance(error, Retryable)  # retry_if_exception_type retries nothing else
    return error
