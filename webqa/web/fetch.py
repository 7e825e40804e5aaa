"""Fetching live pages safely: the SSRF guard on every hop, hard limits on everything.

``Fetcher.fetch(url)`` returns a ``Document`` or raises ``FetchError``. What it promises:

* every redirect hop is checked by the guard, and the socket is opened to exactly the
  addresses the guard approved (``webqa.web.transport``); redirects are capped;
* one wall-clock deadline (``timeout``) covers the whole fetch, retries included; every
  socket operation is cut to the time left, so a server that trickles bytes or stalls
  forever cannot hold a fetch past it;
* the body is capped at ``max_bytes`` *after* decompression (``webqa.web.decompress``);
  a truncated compressed body is refused, never shown in part;
* 429, 5xx and connection errors are retried under ``webqa.retry``'s policy (Retry-After
  honoured up to a cap, no wait past the deadline); other 4xx fail at once;
* only HTML, XHTML and plain text are accepted, decoded as ``webqa.web.charset`` says
  (never in an encoding that could turn harmless bytes into markup).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx

from webqa.errors import BlockedURLError, FetchError
from webqa.retry import GaveUp, Retryable, RetryPolicy, raise_if_retryable
from webqa.text import strip_unprintable
from webqa.web.base import Closing, Document
from webqa.web.cache import PAGE_TTL, Cache
from webqa.web.charset import decode_body
from webqa.web.decompress import ACCEPT_ENCODING, read_capped
from webqa.web.guard import IPNetwork, Resolver, URLGuard
from webqa.web.transport import USER_AGENT, deadline, guarded_client, time_left

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CHARSET_PARAM = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_TITLE_OPEN = re.compile(r"<title", re.I)
_TITLE_CLOSE = re.compile(r"</title\s*>", re.I)
_TAG = re.compile(r"<[^<>]*>")


class _NoCookies(DefaultCookiePolicy):
    """Fetches are stateless: no site can track one episode into the next."""

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False


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
    return " ".join(strip_unprintable(title).split())[:300]


class Fetcher(Closing):
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
        user_agent: str = USER_AGENT,
        resolver: Resolver | None = None,
    ) -> None:
        self.guard = URLGuard(allow_private=allow_private, resolver=resolver)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.retry = RetryPolicy(retries, backoff, max_retry_after)
        self.cache = cache
        self.cache_ttl = cache_ttl
        self._client = guarded_client(
            self.guard,
            follow_redirects=False,
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
        with deadline(self.timeout):
            try:
                doc = self.retry.call(lambda: self._follow(url), time_left=time_left)
            except GaveUp as stop:
                raise FetchError(f"{stop} ({stop.why(self.timeout)})", url=url) from None
        if self.cache is not None:
            fields = {"url": doc.url, "title": doc.title, "body": doc.body}
            fields["content_type"] = doc.content_type
            self.cache.put("page", url, json.dumps(fields), self.cache_ttl)
        return doc

    def _follow(self, url: str) -> Document:
        """One try: request ``url`` and follow redirects, guarding every hop."""
        current = url
        for _ in range(self.max_redirects + 1):
            self.guard.check_url(current)
            try:
                with self._client.stream("GET", current, timeout=max(time_left(), 0.001)) as resp:
                    location = resp.headers.get("location")
                    if resp.is_redirect and location:
                        current = str(resp.url.join(location.strip())).split("#", 1)[0]
                        continue
                    return self._document(resp, current)
            except BlockedURLError as exc:  # raised at connect time by the guarded backend
                raise BlockedURLError(f"refused {current}: {exc}", url=current) from None
            except httpx.TimeoutException as exc:
                if time_left() <= 0:
                    raise FetchError(
                        f"timed out after {self.timeout:g} s fetching {url}", url=url
                    ) from exc
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
        raise_if_retryable(status, f"HTTP {status} {resp.reason_phrase} from {url}", resp.headers)
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
            raise FetchError(f"page larger than {self.max_bytes} bytes: {url}", url=url)
        data = read_capped(resp, url, self.max_bytes)
        charset = _CHARSET_PARAM.search(params)
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

    def close(self) -> None:
        self._client.close()
