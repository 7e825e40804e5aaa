"""Fetching live pages safely: the SSRF guard on every hop, hard limits on everything.

``Fetcher.fetch(url)`` returns a ``Document`` or raises ``FetchError``. What it promises:

* every redirect hop is checked by the guard, and the socket is opened to exactly the
  addresses the guard approved (no DNS-rebinding gap); redirects are capped;
* one wall-clock deadline (``timeout``) covers the whole fetch, retries included; every
  socket operation's timeout is cut to the time left, so a server that trickles bytes
  or stalls forever cannot hold a fetch past it;
* the body is capped at ``max_bytes`` *after* decompression, decoding in small steps,
  so a gzip or brotli bomb is refused quickly with bounded memory; a compressed body that
  ends before its stream does (truncated gzip, deflate or brotli) is refused, never
  shown as a partial page;
* 429 (honouring ``Retry-After`` up to a cap), 5xx and connection errors are retried
  with exponential backoff; other 4xx fail at once;
* only HTML, XHTML and plain text are accepted; a declared charset is honoured only if
  it is one browsers use for HTML and ASCII-compatible (never UTF-7, UTF-16 without a
  BOM, EBCDIC or Python's non-text codecs, which could turn harmless bytes into markup).

The search backends reuse the same pieces (``deadline``, ``deadline_client``,
``read_capped``) for their JSON APIs, without the guard.
"""

from __future__ import annotations

import codecs
import contextlib
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
import unicodedata
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


def time_left() -> float:
    """Seconds left before the current deadline (infinite when none is set)."""
    deadline = _deadline.get()
    return float("inf") if deadline is None else deadline - time.monotonic()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Within this block, every socket operation of a ``deadline_client`` (and of the
    fetcher) ends ``seconds`` from now; an enclosing deadline that ends sooner still wins."""
    end = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(end if outer is None else min(end, outer))
    try:
        yield
    finally:
        _deadline.reset(token)


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


class _DeadlineBackend(httpcore.NetworkBackend):
    """Connects like httpcore's own backend, with every operation cut to the deadline."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, _time_left(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedURLError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _GuardedBackend(_DeadlineBackend):
    """Resolves through the guard and connects only to the addresses it approved.

    TLS still verifies the certificate against the host name (httpcore passes the name,
    not the address, as ``server_hostname``).
    """

    def __init__(self, guard: URLGuard) -> None:
        super().__init__()
        self._guard = guard

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
                return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every fetcher (loading the CA bundle takes ~50 ms)."""
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


class _NoCookies(DefaultCookiePolicy):
    """Fetches are stateless: no site can track one episode into the next."""

    def set_ok(self, cookie: typing.Any, request: typing.Any) -> bool:
        return False


# ---------------------------------------------------------------- bounded decoding

Decoder = Callable[[bytes], Iterator[bytes]]  # feed compressed bytes (b"" = end), get pieces


class TruncatedBody(Exception):
    """A compressed body ended before its compressed stream did."""


class _ZlibDecoder:
    """gzip (``wbits=31``) or deflate (``None``: zlib-wrapped per the RFC, or raw as some
    servers send it), in steps of at most ``STEP`` bytes of output. At the end (``b""``)
    a stream that has not finished raises ``TruncatedBody``."""

    def __init__(self, wbits: int | None) -> None:
        self.wbits = wbits
        self.d = None if wbits is None else zlib.decompressobj(wbits)
        self.fed = False  # any compressed bytes at all (an empty body is an empty page)

    def __call__(self, data: bytes) -> Iterator[bytes]:
        self.fed = self.fed or bool(data)
        if self.d is None:
            if not data:
                return
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self.d = zlib.decompressobj(15 if wrapped else -15)
        end = not data
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
                break
        if end and self.fed and not self.d.eof:
            raise TruncatedBody(
                f"the {'gzip' if self.wbits == 31 else 'deflate'} stream ended early"
            )


class _BrotliDecoder:
    """brotli in steps of about ``STEP`` bytes of output (needs brotli 1.2+); at the end
    (``b""``) a stream that has not finished raises ``TruncatedBody``."""

    def __init__(self) -> None:
        import brotli

        self.d = brotli.Decompressor()
        self.fed = False

    def __call__(self, data: bytes) -> Iterator[bytes]:
        self.fed = self.fed or bool(data)
        if self.d.is_finished():
            return
        out = self.d.process(data, output_buffer_limit=STEP)
        if out:
            yield out
        while not self.d.can_accept_more_data() and not self.d.is_finished():
            yield self.d.process(b"", output_buffer_limit=STEP)
        if not data and self.fed and not self.d.is_finished():
            raise TruncatedBody("the brotli stream ended early")


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


def read_capped(resp: httpx.Response, url: str, max_bytes: int, *, what: str = "page") -> bytes:
    """The body of ``resp``, decompressed in small steps and refused past ``max_bytes``.

    Raises FetchError naming ``url`` (too large, corrupt or truncated compressed body),
    or ``httpx.ReadTimeout`` once the current ``deadline`` has passed.
    """
    decode = _make_decoder(resp.headers.get("content-encoding", ""), url)
    parts: list[bytes] = []
    total = 0
    try:
        for raw in itertools.chain(resp.iter_raw(STEP), [b""]):  # b"": flush the decoder
            if time_left() <= 0:
                raise httpx.ReadTimeout("deadline passed")
            for piece in decode(raw):
                total += len(piece)
                if total > max_bytes:
                    raise FetchError(f"{what} larger than {max_bytes} bytes: {url}", url=url)
                parts.append(piece)
    except DECODE_ERRORS as exc:
        raise FetchError(f"corrupt compressed body from {url}: {exc}", url=url) from exc
    except TruncatedBody as exc:
        raise FetchError(
            f"truncated compressed body from {url}: {exc} (refused, not used in part)", url=url
        ) from exc
    return b"".join(parts)


# ---------------------------------------------------------------- content


HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CHARSET_RE = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)
_TITLE_OPEN = re.compile(r"<title", re.I)
_TITLE_CLOSE = re.compile(r"</title\s*>", re.I)
_TAG = re.compile(r"<[^<>]*>")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Labels Python does not know, and Python codecs browsers replace by a superset.
_LABELS = {"windows-874": "cp874", "x-sjis": "shift_jis", "windows-31j": "cp932"}
_WHATWG_ALIASES = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gbk",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
}
# The encodings a declared charset may select: the WHATWG Encoding Standard's
# ASCII-compatible, stateless ones (by Python's canonical codec names). Anything else is
# ignored as if undeclared: UTF-7 and ISO-2022 (escape sequences can turn harmless ASCII
# into markup), UTF-16/32 without a BOM (a BOM is honoured before any declaration),
# EBCDIC, and Python's non-text codecs (rot13, zlib, base64, ...).
_HONOURED = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8",
        "cp866",
        "koi8-r",
        "koi8-u",
        "mac-roman",
        "mac-cyrillic",
        "cp874",
        "gbk",
        "gb18030",
        "big5hkscs",
        "euc-jp",
        "cp932",
        "cp949",
        *(f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)),
        *(f"cp{n}" for n in range(1250, 1259)),
    )
)


def _codec(name: str | bytes | None) -> str | None:
    """The Python codec for a declared charset, or None if unknown or not honoured."""
    if not name:
        return None
    text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
    label = text.strip().strip("\"'").lower()
    try:
        canonical = codecs.lookup(_LABELS.get(label, label)).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return None
    codec = _WHATWG_ALIASES.get(canonical, canonical)
    return codec if codec in _HONOURED else None


def decode_body(data: bytes, charset: str | None, *, is_html: bool) -> str:
    """Bytes to text: BOM, then the header's charset, then ``<meta charset>``, then UTF-8,
    then windows-1252 (what browsers assume). A charset that is not honoured (see
    ``_HONOURED``) counts as none."""
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


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})  # Unicode categories dropped


def printable(text: str) -> str:
    """``text`` without control, format (bidirectional overrides), surrogate, private-use
    and unassigned characters, which could rewrite a terminal or reorder what a reader
    sees; whitespace becomes plain spaces."""
    return "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _UNPRINTABLE
    )


def html_title(text: str) -> str:
    """The text of the first ``<title>``, unescaped, printable and on one line ("" if
    none), at most 300 characters. Linear time on any page (the old regex was quadratic
    on ``<title><title>...``): only the first ``<title`` is tried, its attributes may
    take 1,000 characters, and markup inside is removed as ``<[^<>]*>``."""
    start = _TITLE_OPEN.search(text)
    if not start:
        return ""
    opened = text.find(">", start.end(), start.end() + 1000)  # the end of the tag
    end = _TITLE_CLOSE.search(text, opened + 1) if opened >= 0 else None
    if not end:
        return ""
    inner = text[opened + 1 : min(end.start(), opened + 1 + 30_000)]
    title = html.unescape(_TAG.sub("", inner))
    return " ".join(printable(title).split())[:300]


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
            transport=_DeadlineTransport(_GuardedBackend(self.guard)),
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
        return time_left()

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
        data = read_capped(resp, url, self.max_bytes)
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
