"""Fetching live pages safely: the SSRF guard on every hop, hard limits on everything.

``Fetcher.fetch(url)`` returns a ``Document`` or raises ``FetchError``. What it promises:

* every redirect hop is checked by the guard, and the socket is opened to exactly the
  addresses the guard approved (no DNS-rebinding gap); redirects are capped;
* one wall-clock deadline (``timeout``) covers the whole fetch, retries included; every
  socket operation's timeout is cut to the time left, so a server that trickles bytes
  or stalls forever cannot hold a fetch past it;
* the body is capped at ``max_bytes`` *after* decompression, decoding in small steps,
  so a gzip or brotli bomb is refused quickly with bounded memory;
* 429 (honouring ``Retry-After`` up to a cap), 5xx and connection errors are retried
  with exponential backoff; other 4xx fail at once;
* only HTML, XHTML and plain text are accepted.
"""

from __future__ import annotations

import codecs
import contextvars
import email.utils
import functools
import html
import itertools
import json
import re
import ssl
import time
import typing
import zlib
from collections.abc import Callable, Iterable, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType

import httpcore
import httpx

from webqa.errors import BlockedURLError, FetchError
from webqa.web.base import Document
from webqa.web.cache import PAGE_TTL, Cache
from webqa.web.guard import IPNetwork, Resolver, URLGuard

DEFAULT_USER_AGENT = "webqa/0.1 (+https://github.com/webqa; question-answering research agent)"
STEP = 64 * 1024  # most bytes one decompression step may produce

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "webqa_fetch_deadline", default=None
)

# ---------------------------------------------------------------- retry policy


class Retryable(Exception):
    """A failure worth retrying (429, 5xx, connection error), with the server's wish."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
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


def retry_delay(attempt: int, backoff: float, retry_after: float | None, cap: float) -> float:
    """Wait before retry number ``attempt + 1``: the server's wish (capped) or backoff."""
    if retry_after is not None:
        return min(retry_after, cap)
    return min(backoff * (2**attempt), cap)


# ---------------------------------------------------------------- guarded network


def _time_left(timeout: float | None) -> float | None:
    """``timeout`` cut to the current fetch's deadline; raises once the deadline passed."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("fetch deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every operation ends by the fetch deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _time_left(timeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves through the guard and connects only to the addresses it approved.

    TLS still verifies the certificate against the host name (httpcore passes the name,
    not the address, as ``server_hostname``).
    """

    def __init__(self, guard: URLGuard) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._guard.resolve(host, port)
        except BlockedURLError:
            raise
        except FetchError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for ip in addresses:
            try:
                stream = self._inner.connect_tcp(
                    str(ip), port, _time_left(timeout), local_address, socket_options
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
    """One verifying TLS context for every fetcher (loading the CA bundle takes ~50 ms)."""
    return httpx.create_ssl_context(trust_env=False)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport with the connection pool built over ``_GuardedBackend``."""

    def __init__(self, guard: URLGuard) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(guard),
        )


class _NoCookies(DefaultCookiePolicy):
    """Fetches are stateless: no site can track one episode into the next."""

    def set_ok(self, cookie: typing.Any, request: typing.Any) -> bool:
        return False


# ---------------------------------------------------------------- bounded decoding

Decoder = Callable[[bytes], Iterator[bytes]]  # feed compressed bytes (b"" = end), get pieces


class _ZlibDecoder:
    """gzip (``wbits=31``) or deflate (``None``: zlib-wrapped per the RFC, or raw as some
    servers send it), in steps of at most ``STEP`` bytes of output."""

    def __init__(self, wbits: int | None) -> None:
        self.wbits = wbits
        self.d = None if wbits is None else zlib.decompressobj(wbits)

    def __call__(self, data: bytes) -> Iterator[bytes]:
        if self.d is None:
            if not data:
                return
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self.d = zlib.decompressobj(15 if wrapped else -15)
        while True:
            out = self.d.decompress(data, STEP)
            data = self.d.unconsumed_tail
            if out:
                yield out
            rest = self.d.unused_data
            if self.d.eof and self.wbits == 31 and rest.startswith(b"\x1f\x8b"):
                data, self.d = rest, zlib.decompressobj(31)  # another gzip member follows
                continue
            if self.d.eof or (not data and len(out) < STEP):
                return


class _BrotliDecoder:
    """brotli in steps of about ``STEP`` bytes of output (needs brotli 1.2+)."""

    def __init__(self) -> None:
        import brotli

        self.d = brotli.Decompressor()

    def __call__(self, data: bytes) -> Iterator[bytes]:
        if self.d.is_finished():
            return
        out = self.d.process(data, output_buffer_limit=STEP)
        if out:
            yield out
        while not self.d.can_accept_more_data() and not self.d.is_finished():
            yield self.d.process(b"", output_buffer_limit=STEP)


def _brotli_errors() -> tuple[type[Exception], ...]:
    """brotli's error class if brotli can decode in bounded steps (1.2+), else ()."""
    try:
        import brotli

        brotli.Decompressor().process(b"", output_buffer_limit=1)
    except (ImportError, TypeError):  # brotli missing, or older than 1.2
        return ()
    return (brotli.error,)


_BROTLI_ERRORS = _brotli_errors()
BROTLI_OK = bool(_BROTLI_ERRORS)
DECODE_ERRORS: tuple[type[Exception], ...] = (zlib.error, *_BROTLI_ERRORS)
ACCEPT_ENCODING = "gzip, deflate, br" if BROTLI_OK else "gzip, deflate"


def _make_decoder(content_encoding: str, url: str) -> Decoder:
    """A bounded decoder for a (possibly stacked) Content-Encoding header."""
    stages: list[Decoder] = []
    for coding in (c.strip().lower() for c in content_encoding.split(",")):
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip"):
            stages.append(_ZlibDecoder(31))
        elif coding == "deflate":
            stages.append(_ZlibDecoder(None))
        elif coding == "br" and BROTLI_OK:
            stages.append(_BrotliDecoder())
        else:
            raise FetchError(f"unsupported content encoding {coding!r} at {url}", url=url)

    def chain(data: bytes, stages: list[Decoder]) -> Iterator[bytes]:
        if not stages:
            if data:
                yield data
            return
        *outer, last = stages  # the last coding applied is undone first
        for piece in last(data):
            yield from chain(piece, outer)
        if not data and outer:
            yield from chain(b"", outer)

    return lambda data: chain(data, stages)


# ---------------------------------------------------------------- content


HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CHARSET_RE = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WHATWG_ALIASES = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "ascii": "cp1252"}


def _codec(name: str | bytes | None) -> str | None:
    if not name:
        return None
    text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    try:
        canonical = codecs.lookup(text.strip().strip("\"'")).name
    except LookupError:
        return None
    return _WHATWG_ALIASES.get(canonical, canonical)


def decode_body(data: bytes, charset: str | None, *, is_html: bool) -> str:
    """Bytes to text: BOM, then the header's charset, then ``<meta charset>``, then UTF-8,
    then windows-1252 (what browsers assume)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return data.decode(name, errors="replace")
    meta = _CHARSET_RE.search(data[:4096]) if is_html else None
    for codec in (_codec(charset), _codec(meta.group(1) if meta else None)):
        if codec:
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def html_title(text: str) -> str:
    """The text of the first ``<title>``, unescaped and on one line ("" if none)."""
    match = _TITLE_RE.search(text)
    if not match:
        return ""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", match.group(1))).split())[:300]


# ---------------------------------------------------------------- the fetcher


class Fetcher:
    """Fetches live pages into ``Document`` objects (``clean=False``).

    ``retries`` counts tries after the first (``retries=3``: at most 4 requests).
    ``timeout`` is the wall-clock limit of one ``fetch`` call, retries included.
    ``allow_private``: see ``webqa.web.guard.URLGuard``.
    """

    def __init__(
        self,
        *,
        allow_private: bool | Iterable[str | IPNetwork] = False,
        timeout: float = 15.0,
        max_bytes: int = 5_000_000,
        max_redirects: int = 5,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        cache: Cache | None = None,
        cache_ttl: float = PAGE_TTL,
        user_agent: str = DEFAULT_USER_AGENT,
        resolver: Resolver | None = None,
    ) -> None:
        self.guard = URLGuard(allow_private=allow_private, resolver=resolver)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.cache = cache
        self.cache_ttl = cache_ttl
        self._client = httpx.Client(
            transport=_GuardedTransport(self.guard),
            follow_redirects=False,
            trust_env=False,
            cookies=CookieJar(policy=_NoCookies()),
            headers={
                "User-Agent": user_agent,
                "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
        )

    def fetch(self, url: str) -> Document:
        """The document at ``url``; raises FetchError or BlockedURLError."""
        url = str(url).strip().split("#", 1)[0]
        self.guard.check_url(url)  # before the cache too: policy may differ per process
        if self.cache is not None:
            hit = self.cache.get("page", url)
            if isinstance(hit, str):
                return Document(**json.loads(hit), clean=False)
        token = _deadline.set(time.monotonic() + self.timeout)
        try:
            doc = self._fetch_with_retries(url)
        finally:
            _deadline.reset(token)
        if self.cache is not None:
            fields = {"url": doc.url, "title": doc.title, "body": doc.body}
            fields["content_type"] = doc.content_type
            self.cache.put("page", url, json.dumps(fields), self.cache_ttl)
        return doc

    def _fetch_with_retries(self, url: str) -> Document:
        attempt = 0
        while True:
            try:
                return self._follow(url)
            except Retryable as exc:
                failure = exc
            attempt += 1
            if attempt > self.retries:
                raise FetchError(f"{failure} (gave up after {attempt} attempts)", url=url)
            delay = retry_delay(
                attempt - 1, self.backoff, failure.retry_after, self.max_retry_after
            )
            if self._left() <= delay:
                raise FetchError(
                    f"{failure} (no time left to retry within {self.timeout:g} s)", url=url
                )
            time.sleep(delay)

    def _left(self) -> float:
        deadline = _deadline.get()
        return float("inf") if deadline is None else deadline - time.monotonic()

    def _timed_out(self, url: str) -> FetchError:
        return FetchError(f"timed out after {self.timeout:g} s fetching {url}", url=url)

    def _follow(self, url: str) -> Document:
        """One try: request ``url`` and follow redirects, guarding every hop."""
        current = url
        for _ in range(self.max_redirects + 1):
            self.guard.check_url(current)
            try:
                with self._client.stream("GET", current, timeout=max(self._left(), 0.001)) as resp:
                    location = resp.headers.get("location")
                    if resp.is_redirect and location:
                        current = str(resp.url.join(location.strip())).split("#", 1)[0]
                        continue
                    return self._document(resp, current)
            except BlockedURLError as exc:  # raised at connect time by the guarded backend
                raise BlockedURLError(f"refused {current}: {exc}", url=current) from None
            except httpx.TimeoutException as exc:
                if self._left() <= 0:
                    raise self._timed_out(url) from exc
                raise Retryable(f"timeout fetching {current}: {exc}") from exc
            except (httpx.TransportError, httpcore.ConnectError) as exc:
                raise Retryable(f"connection failed fetching {current}: {exc}") from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # e.g. a malformed Location
                raise FetchError(f"cannot fetch {current}: {exc}", url=current) from exc
        raise FetchError(
            f"too many redirects (more than {self.max_redirects}) fetching {url}", url=url
        )

    def _document(self, resp: httpx.Response, url: str) -> Document:
        status = resp.status_code
        if status == 429 or status >= 500:
            raise Retryable(
                f"HTTP {status} {resp.reason_phrase} from {url}",
                parse_retry_after(resp.headers.get("retry-after")),
            )
        if not 200 <= status < 300:
            raise FetchError(f"HTTP {status} {resp.reason_phrase} from {url}", url=url)
        mime, _, params = resp.headers.get("content-type", "").partition(";")
        mime = mime.strip().lower()
        if mime and mime not in HTML_TYPES and mime != "text/plain":
            what = "PDF is not supported" if mime == "application/pdf" else "need HTML or text"
            raise FetchError(f"unsupported content type {mime} at {url} ({what})", url=url)
        encoding = resp.headers.get("content-encoding", "")
        declared = resp.headers.get("content-length", "")
        if not encoding and declared.isdigit() and int(declared) > self.max_bytes:
            raise self._too_large(url)
        data = self._read_body(resp, url, _make_decoder(encoding, url))
        charset = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", params, re.I)
        if not mime:  # no Content-Type: sniff
            mime = "text/html" if data.lstrip()[:1] == b"<" else "text/plain"
        is_html = mime in HTML_TYPES
        body = decode_body(data, charset.group(1) if charset else None, is_html=is_html)
        title = html_title(body) if is_html else ""
        return Document(
            url=str(resp.url),
            title=title or str(resp.url),
            body=body,
            content_type="text/html" if is_html else "text/plain",
            clean=False,
        )

    def _too_large(self, url: str) -> FetchError:
        return FetchError(f"page larger than {self.max_bytes} bytes: {url}", url=url)

    def _read_body(self, resp: httpx.Response, url: str, decode: Decoder) -> bytes:
        parts: list[bytes] = []
        total = 0
        try:
            for raw in itertools.chain(resp.iter_raw(STEP), [b""]):  # b"": flush the decoder
                if self._left() <= 0:
                    raise self._timed_out(url)
                for piece in decode(raw):
                    total += len(piece)
                    if total > self.max_bytes:
                        raise self._too_large(url)
                    parts.append(piece)
        except DECODE_ERRORS as exc:
            raise FetchError(f"corrupt compressed body from {url}: {exc}", url=url) from exc
        return b"".join(parts)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
