"""Response bodies decompressed in bounded steps: a gzip or brotli bomb is refused
quickly, with bounded memory, and a compressed body that ends before its stream does
(truncated gzip, deflate or brotli) is refused, never used in part.

``read_capped(resp, url, max_bytes)`` reads an ``httpx`` response's raw bytes in
``STEP``-sized pieces, undoes its (possibly stacked) Content-Encoding ``STEP`` bytes of
output at a time, and stops at ``max_bytes`` of decompressed body or at the current
deadline (``webqa.web.transport``). Pages and search engines' replies both go through it.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterator

import httpx

from webqa.errors import FetchError
from webqa.web.transport import time_left

STEP = 64 * 1024  # most bytes one decompression step may produce

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
