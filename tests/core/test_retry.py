"""The one retry policy (webqa.retry) on its own: counts, waits, deadlines, pass-through.
The fetcher, the search backends and the OpenAI client are tested against servers in
tests/web and tests/models."""

from __future__ import annotations

import time

import pytest

from webqa.retry import GaveUp, Retryable, RetryPolicy, parse_retry_after, raise_if_retryable


class Flaky:
    """Fails with ``failures`` in turn, then returns "done"; counts its calls."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def test_retries_until_it_works() -> None:
    flaky = Flaky(Retryable("busy"), Retryable("busy"))
    assert RetryPolicy(retries=2, backoff=0.001).call(flaky) == "done"
    assert flaky.calls == 3


def test_gives_up_after_the_last_retry() -> None:
    flaky = Flaky(*[Retryable(f"busy {n}") for n in range(5)])
    with pytest.raises(GaveUp) as info:
        RetryPolicy(retries=2, backoff=0.001).call(flaky)
    assert flaky.calls == 3
    assert (str(info.value), info.value.attempts, info.value.out_of_time) == ("busy 2", 3, False)
    assert info.value.why(15) == "gave up after 3 attempts"


def test_no_retries_means_one_try() -> None:
    flaky = Flaky(Retryable("busy"))
    with pytest.raises(GaveUp, match="busy"):
        RetryPolicy(retries=0).call(flaky)
    assert flaky.calls == 1


def test_other_errors_pass_through_at_once() -> None:
    flaky = Flaky(ValueError("not a retry"))
    with pytest.raises(ValueError, match="not a retry"):
        RetryPolicy(retries=3, backoff=0.001).call(flaky)
    assert flaky.calls == 1


def test_waits_double_and_are_capped() -> None:
    policy = RetryPolicy(backoff=0.5, max_wait=3.0)
    assert [policy.delay(n, None) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(1, 1.5) == 1.5  # the server's wish replaces the backoff
    assert policy.delay(1, 3600.0) == 3.0  # up to the cap


def test_retry_after_is_waited() -> None:
    flaky = Flaky(Retryable("slow down", retry_after=0.3))
    start = time.monotonic()
    assert RetryPolicy(backoff=0.001).call(flaky) == "done"
    assert 0.3 <= time.monotonic() - start < 0.6


def test_a_wait_past_the_deadline_fails_at_once() -> None:
    flaky = Flaky(Retryable("come back in an hour", retry_after=3600.0))
    start = time.monotonic()
    with pytest.raises(GaveUp) as info:
        RetryPolicy(retries=3, max_wait=30.0).call(flaky, time_left=lambda: 15.0)
    assert time.monotonic() - start < 0.2
    assert flaky.calls == 1 and info.value.out_of_time
    assert info.value.why(15) == "no time left to retry within 15 s"


def test_backoff_stops_at_the_deadline() -> None:
    end = time.monotonic() + 0.5
    flaky = Flaky(*[Retryable("down") for _ in range(20)])
    with pytest.raises(GaveUp) as info:
        RetryPolicy(retries=20, backoff=0.1).call(flaky, time_left=lambda: end - time.monotonic())
    assert info.value.out_of_time
    assert flaky.calls == 3  # waits of 0.1 and 0.2 s fit in 0.5 s, 0.4 s more does not
    assert time.monotonic() < end


def test_retry_after_headers() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 502, 503, 504, 599])
def test_statuses_worth_retrying(status: int) -> None:
    with pytest.raises(Retryable) as info:
        raise_if_retryable(status, f"HTTP {status}", {"retry-after": "2"})
    assert (str(info.value), info.value.retry_after) == (f"HTTP {status}", 2.0)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 410, 422])
def test_statuses_not_worth_retrying(status: int) -> None:
    raise_if_retryable(status, "fine", {})
