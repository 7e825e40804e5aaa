"""A fetched body's bytes to text, the way browsers choose the encoding, minus the
encodings that could turn harmless bytes into markup.

The order: a byte-order mark; the Content-Type header's charset; for HTML a
``<meta charset>`` in the first 4 KB; UTF-8 if the bytes are valid UTF-8; else what
charset-normalizer detects, and windows-1252 (what browsers assume for Western pages)
unless the detector rejects windows-1252 as a mess and finds a better one (an undeclared
KOI8-R or Shift_JIS page reads as Russian or Japanese, not as mojibake).

A declared charset is honoured only if it is one of the WHATWG Encoding Standard's
ASCII-compatible, stateless encodings (``_HONOURED``), and detection chooses only among
those. Anything else counts as undeclared: UTF-7 and ISO-2022 (escape sequences can turn
harmless ASCII into ``<script>``), UTF-16/32 without a BOM, EBCDIC, and Python's
non-text codecs (rot13, zlib, base64, ...).
"""

from __future__ import annotations

import codecs
import re

import charset_normalizer

_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)
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
# The encodings a declared charset may select (Python's canonical codec names).
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
_DETECTABLE = sorted(_HONOURED - {"utf-8"})  # UTF-8 is tried, strictly, before detection
_WESTERN = "cp1252"
DETECT_BYTES = 64 * 1024  # detection reads at most this much of a body (~10 ms)


def codec_for(name: str | bytes | None) -> str | None:
    """The Python codec for a declared charset label, or None if unknown or not honoured."""
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
    """Bytes to text in the order the module docstring gives; never raises (bytes the
    chosen encoding cannot read become U+FFFD)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return data.decode(name, errors="replace")
    meta = _META_CHARSET.search(data[:4096]) if is_html else None
    for codec in (codec_for(charset), codec_for(meta.group(1) if meta else None)):
        if codec:
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(detect(data), errors="replace")


def detect(data: bytes) -> str:
    """The encoding of undeclared, non-UTF-8 ``data``: windows-1252 unless
    charset-normalizer finds it a mess (its chaos over 0.2) and finds an honoured
    encoding that is not. Reads at most ``DETECT_BYTES``, cut at white space, a quote or
    an angle bracket: no multi-byte character of an honoured encoding holds those bytes."""
    sample = data
    if len(data) > DETECT_BYTES:
        cut = max(data.rfind(bytes([b]), 0, DETECT_BYTES) for b in b" \n\r\t<>\"'")
        sample = data[: cut if cut > 0 else DETECT_BYTES]
    matches = charset_normalizer.from_bytes(
        sample, cp_isolation=_DETECTABLE, preemptive_behaviour=False, enable_fallback=False
    )
    if any(_WESTERN in match.could_be_from_charset for match in matches):
        return _WESTERN
    for match in matches:
        codec = codec_for(match.encoding)
        if codec:
            return codec
    return _WESTERN
