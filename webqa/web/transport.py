"""The network under every live request: one wall-clock deadline, and the SSRF guard at
connect time.

``deadline(seconds)`` sets a deadline for the block (an enclosing one that ends sooner
still wins); every socket operation of a client made here (connect, TLS, read, write) is
cut to the time left, so a server that trickles bytes or stalls forever cannot hold a
request past it. ``deadline_client()`` is such a client for endpoints the user chose (a
search engine); ``guarded_client(guard)`` also resolves every host through the guard and
connects only to the addresses it approved, so there is no DNS-rebinding gap between the
check and the connection. Unix sockets are refused.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import ssl
import time
import typing
from collections.abc import Iterable, Iterator

import httpcore
import httpx

from webqa.errors import BlockedURLError, FetchError
from webqa.web.guard import URLGuard

USER_AGENT = "webqa/0.1 (+https://github.com/webqa; question-answering research agent)"

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "webqa_fetch_deadline", default=None
)


def time_left() -> float:
    """Seconds left before the current deadline (infinite when none is set)."""
    end = _deadline.get()
    return float("inf") if end is None else end - time.monotonic()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Within this block, every socket operation of a client made here ends ``seconds``
    from now; an enclosing deadline that ends sooner still wins."""
    end = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(end if outer is None else min(end, outer))
    try:
        yield
    finally:
        _deadline.reset(token)


def _cut(timeout: float | None) -> float | None:
    """``timeout`` cut to the current deadline; raises once the deadline has passed."""
    left = time_left()
    if left == float("inf"):
        return timeout
    if left <= 0:
        raise httpcore.ReadTimeout("fetch deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every operation ends by the deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cut(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cut(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _cut(timeout)))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """Connects like httpcore's own backend, with every operation cut to the deadline;
    with a ``guard``, resolves through it and connects only to the addresses it approved
    (TLS still verifies the certificate against the host name: httpcore passes the name,
    not the address, as ``server_hostname``)."""

    def __init__(self, guard: URLGuard | None = None) -> None:
        self._inner = httpcore.SyncBackend()
        self._guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses: list[typing.Any] = [host]
        if self._guard is not None:
            try:
                addresses = list(self._guard.resolve(host, port))
            except BlockedURLError:
                raise
            except FetchError as exc:
                raise httpcore.ConnectError(str(exc)) from exc
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    str(address), port, _cut(timeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedURLError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client (loading the CA bundle takes ~50 ms)."""
    return httpx.create_ssl_context(trust_env=False)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport with the connection pool built over ``backend``."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


def deadline_client(**kwargs: typing.Any) -> httpx.Client:
    """An ``httpx.Client`` whose socket operations all end by the current ``deadline``
    (no SSRF guard: for endpoints the user configured, such as a search engine)."""
    return httpx.Client(transport=_DeadlineTransport(_DeadlineBackend()), trust_env=False, **kwargs)


def guarded_client(guard: URLGuard, **kwargs: typing.Any) -> httpx.Client:
    """A ``deadline_client`` that connects only to addresses ``guard`` approves, checked
    after DNS resolution (callers still check each URL, redirects included)."""
    transport = _DeadlineTransport(_DeadlineBackend(guard))
    return httpx.Client(transport=transport, trust_env=False, **kwargs)
