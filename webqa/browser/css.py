"""A small, bounded reader of CSS: just enough to tell which page text a person cannot see.

Pages hide text from people (and so from the quotes a person would check) with
stylesheet rules as often as with inline styles: ``<style>.x{display:none}</style>``.
This module reads the page's own ``<style>`` blocks and ``style`` attributes and
answers two questions per element: is it hidden with everything in it (``removes``),
and is the text directly in it readable (``Computed.text_visible``)?

What it understands, and its bounds:

* selectors: ``tag``, ``*``, ``.class``, ``#id``, ``[attr]``, ``[attr=v]`` (and
  ``~= |= ^= $= *=``), compounds of these, ``:not()``/``:is()``/``:where()`` of
  compounds, the descendant and ``>`` combinators; structural pseudo-classes
  (``:first-child``, ``:nth-child()``...) are read as always true (a rule that hides
  may hide a little more), ``+``/``~`` keep only the part after them; a selector with
  a state pseudo-class (``:hover``) or a pseudo-element never matches, and a selector
  that does not parse is skipped;
* ``@media`` blocks apply when their query holds for a 1280x800 desktop screen;
  ``@supports`` blocks apply; other at-rules are skipped;
* the cascade: ``!important``, specificity, order, inline styles last;
* at most ``MAX_STYLE_CHARS`` characters of stylesheet and ``MAX_RULES`` rules per
  page, and ``MAX_MATCH_STEPS`` compound checks (past that, an element is hidden when
  any rule that hides is indexed under its tag, id or a class: more is hidden, never
  less);
* external stylesheets are not fetched, and scripts are not run.

Only the page's own text is at stake: a rule that is not understood leaves text shown,
as before this reader existed; the bounds keep a page built to be slow cheap.
"""

from __future__ import annotations

import colorsys
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_STYLE_CHARS = 300_000  # stylesheet characters read per page (all <style> blocks)
MAX_RULES = 10_000  # style rules read per page
MAX_MATCH_STEPS = 200_000  # compound selector checks per page (see Matcher)
MAX_DECLARATIONS = 200  # declarations read per block or style attribute
MAX_PRELUDE_CHARS = 4_000  # a longer selector list or @media query is skipped
VIEWPORT = (1280, 800)  # the screen @media queries are evaluated for (CSS px)
BASE_FONT_PX = 16.0
MIN_FONT_PX = 4.0  # text set smaller than this cannot be read
MIN_OPACITY = 0.05  # at or below this an element cannot be seen
MIN_CONTRAST = 1.2  # WCAG contrast ratio at or below which text is lost in its background
OFF_SCREEN_PX = -500.0  # an offset at or beyond this moves an element off the screen
COLLAPSED_PX = 1.0  # a box this small (with overflow hidden) shows nothing

RGBA = tuple[float, float, float, float]  # channels 0-255, alpha 0-1
WHITE: RGBA = (255.0, 255.0, 255.0, 1.0)

# The properties that can hide text; every other declaration is dropped on reading.
PROPERTIES = frozenset(
    """display visibility opacity font font-size color background background-color
    background-image left top right bottom margin margin-left margin-top text-indent
    transform width height max-width max-height overflow overflow-x overflow-y clip
    clip-path content-visibility padding padding-top padding-bottom""".split()
)

# ---------------------------------------------------------------------- values

_NAMED: dict[str, str] = dict(
    pair.split(":")
    for pair in """black:000000 white:ffffff red:ff0000 green:008000 blue:0000ff yellow:ffff00
    cyan:00ffff aqua:00ffff magenta:ff00ff fuchsia:ff00ff gray:808080 grey:808080
    silver:c0c0c0 maroon:800000 olive:808000 lime:00ff00 navy:000080 purple:800080
    teal:008080 orange:ffa500 darkgray:a9a9a9 darkgrey:a9a9a9 dimgray:696969 dimgrey:696969
    lightgray:d3d3d3 lightgrey:d3d3d3 gainsboro:dcdcdc whitesmoke:f5f5f5 snow:fffafa
    ivory:fffff0 ghostwhite:f8f8ff floralwhite:fffaf0 aliceblue:f0f8ff azure:f0ffff
    mintcream:f5fffa honeydew:f0fff0 seashell:fff5ee linen:faf0e6 oldlace:fdf5e6
    lavenderblush:fff0f5 beige:f5f5dc antiquewhite:faebd7 mistyrose:ffe4e1
    lightyellow:ffffe0 lightcyan:e0ffff cornsilk:fff8dc lemonchiffon:fffacd
    lightgoldenrodyellow:fafad2 papayawhip:ffefd5 blanchedalmond:ffebcd bisque:ffe4c4
    lavender:e6e6fa darkblue:00008b darkred:8b0000 darkgreen:006400 midnightblue:191970
    pink:ffc0cb brown:a52a2a""".split()
)
_HEX = re.compile(r"#([0-9a-f]{3,8})")
_FUNC_COLOR = re.compile(r"(rgba?|hsla?)\(([^()]*)\)")
_NUMBER = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)([a-z%]*)")
MAX_TOKEN_CHARS = 64  # a longer number is not a CSS value we need
_ABSOLUTE_UNITS = {
    "px": 1.0,
    "pt": 4 / 3,
    "pc": 16.0,
    "in": 96.0,
    "cm": 96 / 2.54,
    "mm": 96 / 25.4,
    "q": 96 / 101.6,
    "rem": BASE_FONT_PX,
    "vw": VIEWPORT[0] / 100,
    "vh": VIEWPORT[1] / 100,
    "vmin": min(VIEWPORT) / 100,
    "vmax": max(VIEWPORT) / 100,
}
_FONT_KEYWORDS = {
    "xx-small": 9.0,
    "x-small": 10.0,
    "small": 13.0,
    "medium": 16.0,
    "large": 18.0,
    "x-large": 24.0,
    "xx-large": 32.0,
    "xxx-large": 48.0,
}


def _number(token: str) -> tuple[float, str] | None:
    """``(value, unit)`` of a CSS number or dimension ("-1.5em" -> (-1.5, "em"))."""
    token = token.strip().lower()
    if len(token) > MAX_TOKEN_CHARS:
        return None
    m = _NUMBER.fullmatch(token)
    if m is None:
        return None
    try:
        return float(m.group(1)), m.group(2)
    except (ValueError, OverflowError):
        return None


def length_px(token: str, font_px: float = BASE_FONT_PX) -> float | None:
    """A length in CSS px (em against ``font_px``); None for percentages, keywords, calc()."""
    parsed = _number(token)
    if parsed is None:
        return None
    value, unit = parsed
    if unit in ("em",):
        return value * font_px
    if unit in ("ex", "ch"):
        return value * font_px / 2
    if unit == "" and value == 0:
        return 0.0
    scale = _ABSOLUTE_UNITS.get(unit)
    return None if scale is None else value * scale


def parse_color(value: str) -> RGBA | None:
    """A colour as (r, g, b, alpha); None when unknown (``currentcolor``, ``var()``...)."""
    value = value.strip().lower()
    if value == "transparent":
        return (0.0, 0.0, 0.0, 0.0)
    hex_digits = _NAMED.get(value)
    if hex_digits is None:
        m = _HEX.fullmatch(value)
        if m is not None and len(m.group(1)) in (3, 4, 6, 8):
            hex_digits = m.group(1)
    if hex_digits is not None:
        if len(hex_digits) in (3, 4):
            hex_digits = "".join(c * 2 for c in hex_digits)
        channels = [int(hex_digits[i : i + 2], 16) for i in range(0, len(hex_digits), 2)]
        alpha = channels[3] / 255 if len(channels) == 4 else 1.0
        return (float(channels[0]), float(channels[1]), float(channels[2]), alpha)
    m = _FUNC_COLOR.fullmatch(value)
    return _color_function(m.group(1), m.group(2)) if m is not None else None


def _color_function(name: str, args: str) -> RGBA | None:
    parts = [p for p in re.split(r"[\s,/]+", args.strip()) if p]
    if len(parts) not in (3, 4):
        return None
    numbers = [_number(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    alpha = 1.0
    if len(values) == 4:
        a, unit = values[3]
        alpha = a / 100 if unit == "%" else a
    if name.startswith("rgb"):
        rgb = [v * 2.55 if unit == "%" else v for v, unit in values[:3]]
    else:
        hue, unit = values[0]
        turns = {"turn": 1.0, "rad": 1 / 6.283185307179586, "grad": 1 / 400}.get(unit, 1 / 360)
        light, sat = values[2][0] / 100, values[1][0] / 100
        r, g, b = colorsys.hls_to_rgb((hue * turns) % 1.0, _unit(light), _unit(sat))
        rgb = [r * 255, g * 255, b * 255]
    return (_channel(rgb[0]), _channel(rgb[1]), _channel(rgb[2]), _unit(alpha))


def _unit(x: float) -> float:
    return min(1.0, max(0.0, x))


def _channel(x: float) -> float:
    return min(255.0, max(0.0, x))


def blend(top: RGBA, under: RGBA) -> RGBA:
    """``top`` painted over the opaque ``under``."""
    a = top[3]
    return (
        top[0] * a + under[0] * (1 - a),
        top[1] * a + under[1] * (1 - a),
        top[2] * a + under[2] * (1 - a),
        1.0,
    )


def _luminance(c: RGBA) -> float:
    def linear(v: float) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(c[0]) + 0.7152 * linear(c[1]) + 0.0722 * linear(c[2])


def contrast(a: RGBA, b: RGBA) -> float:
    """The WCAG contrast ratio of two opaque colours (1 to 21)."""
    la, lb = _luminance(a), _luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


# ---------------------------------------------------------------- declarations


def parse_declarations(text: str) -> list[tuple[str, str, bool]]:
    """``(property, value, important)`` for the properties that can hide text, in order."""
    out: list[tuple[str, str, bool]] = []
    for i, part in enumerate(text.split(";")):
        if i >= MAX_DECLARATIONS:
            break
        name, colon, value = part.partition(":")
        if not colon:
            continue
        name = name.strip().lower()
        if name not in PROPERTIES:
            continue
        head, bang, tail = value.rpartition("!")
        important = bool(bang) and tail.strip().lower() == "important"
        value = (head if important else value).strip().lower()
        if value:
            out.append((name, value, important))
    return out


# ------------------------------------------------------------------- selectors

_STRUCTURAL = frozenset(
    """first-child last-child only-child nth-child nth-last-child first-of-type last-of-type
    only-of-type nth-of-type nth-last-of-type root empty link any-link scope""".split()
)
_ELEMENT_PSEUDO = frozenset({"before", "after", "first-line", "first-letter"})
_IDENT = r"(?:[\w\-\u00a0-\U0010ffff]|\\.)+"
_NAME = re.compile(_IDENT)
_TOKEN = re.compile(
    rf"""(?P<ws>\s+)|(?P<comb>[>+~])|(?P<star>\*)|(?P<tag>{_IDENT})|\.(?P<cls>{_IDENT})
    |\#(?P<id>{_IDENT})|(?P<attr>\[)|(?P<pseudo>::?)""",
    re.VERBOSE,
)
_ATTR = re.compile(
    rf"""\s*(?P<name>{_IDENT})\s*(?:(?P<op>[~|^$*]?=)\s*
    (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>{_IDENT}))\s*(?:[is]\s*)?)?\]""",
    re.VERBOSE,
)
_UNESCAPE = re.compile(r"\\(.)")
_ATTR_NAME = re.compile(r"[a-z_][-\w.:]*", re.ASCII)


Info = tuple[str, "str | None", frozenset[str]]  # an element's tag, id and classes


def element_info(el: Any) -> Info:
    """What selectors look at first: the tag (lower case), id and classes of ``el``."""
    tag = el.tag.lower() if isinstance(el.tag, str) else ""
    classes = el.get("class")
    return tag, el.get("id"), frozenset(classes.split()) if classes else frozenset()


class _Unsupported(Exception):
    """A selector this reader does not understand (the rule is skipped)."""


class _Never(Exception):
    """A selector that never matches a static page (``:hover``, ``::before``)."""


def _unescape(ident: str) -> str:
    return _UNESCAPE.sub(r"\1", ident)


@dataclass(frozen=True)
class Compound:
    """A compound selector: ``tag#id.class[attr]:not(...)``, every part optional."""

    tag: str | None = None
    ids: tuple[str, ...] = ()
    classes: frozenset[str] = frozenset()
    attrs: tuple[tuple[str, str, str], ...] = ()  # (name, op or "", value)
    nots: tuple[Compound, ...] = ()
    anys: tuple[tuple[Compound, ...], ...] = ()  # :is()/:where(): one of each must match

    def matches(self, el: Any, info: Info) -> bool:
        """Whether lxml element ``el`` (described by ``info``) matches."""
        tag, ident, classes = info
        if self.tag is not None and tag != self.tag:
            return False
        if self.ids and any(ident != i for i in self.ids):
            return False
        if self.classes and not self.classes <= classes:
            return False
        for name, op, value in self.attrs:
            if not _attr_matches(el.get(name), op, value):
                return False
        if any(n.matches(el, info) for n in self.nots):
            return False
        return all(any(c.matches(el, info) for c in options) for options in self.anys)

    @property
    def specificity(self) -> tuple[int, int, int]:
        ids, classes, tags = len(self.ids), len(self.classes) + len(self.attrs), int(bool(self.tag))
        for inner in (*self.nots, *(max(o, key=lambda c: c.specificity) for o in self.anys)):
            a, b, c = inner.specificity
            ids, classes, tags = ids + a, classes + b, tags + c
        return ids, classes, tags


def _attr_matches(actual: str | None, op: str, value: str) -> bool:
    if actual is None:
        return False
    if op == "":
        return True
    if op == "=":
        return actual == value
    if op == "~=":
        return value in actual.split()
    if op == "|=":
        return actual == value or actual.startswith(value + "-")
    if not value:
        return False
    if op == "^=":
        return actual.startswith(value)
    if op == "$=":
        return actual.endswith(value)
    return value in actual  # *=


@dataclass(frozen=True)
class Selector:
    """Compounds left to right, joined by combinators (" " descendant or ">" child)."""

    parts: tuple[Compound, ...]
    combinators: tuple[str, ...]

    @property
    def subject(self) -> Compound:
        return self.parts[-1]

    @property
    def specificity(self) -> tuple[int, int, int]:
        total = (0, 0, 0)
        for part in self.parts:
            s = part.specificity
            total = (total[0] + s[0], total[1] + s[1], total[2] + s[2])
        return total


def parse_selector(text: str) -> Selector | None:
    """One selector (no commas); None if it never matches or is not understood."""
    try:
        parts, combinators = _parse_complex(text.strip())
    except (_Unsupported, _Never):
        return None
    return Selector(tuple(parts), tuple(combinators)) if parts else None


def _parse_complex(text: str) -> tuple[list[Compound], list[str]]:
    parts: list[Compound] = []
    combinators: list[str] = []
    pos, pending = 0, ""
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _Unsupported(text)
        if m.group("ws"):
            pending = pending or " "
            pos = m.end()
            continue
        if m.group("comb"):
            pending = m.group("comb")
            pos = m.end()
            continue
        if parts and not pending:
            raise _Unsupported(text)
        compound, pos = _parse_compound(text, pos)
        if pending in ("+", "~"):  # sibling context is not checked: keep only what follows
            parts, combinators = [], []
        elif parts:
            combinators.append(pending)
        elif pending:
            raise _Unsupported(text)  # a selector cannot start with a combinator
        parts.append(compound)
        pending = ""
    if pending.strip():
        raise _Unsupported(text)
    return parts, combinators


def _parse_compound(text: str, pos: int, nested: bool = False) -> tuple[Compound, int]:
    tag: str | None = None
    ids: list[str] = []
    classes: list[str] = []
    attrs: list[tuple[str, str, str]] = []
    nots: list[Compound] = []
    anys: list[tuple[Compound, ...]] = []
    start = pos
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.group("ws") or m.group("comb"):
            break
        if m.group("star") or m.group("tag"):
            if pos != start:
                raise _Unsupported(text)
            tag = None if m.group("star") else _unescape(m.group("tag")).lower()
            pos = m.end()
        elif m.group("cls"):
            classes.append(_unescape(m.group("cls")))
            pos = m.end()
        elif m.group("id"):
            ids.append(_unescape(m.group("id")))
            pos = m.end()
        elif m.group("attr"):
            a = _ATTR.match(text, m.end())
            if a is None:
                raise _Unsupported(text)
            value = a.group("dq") or a.group("sq") or a.group("bare") or ""
            name = _unescape(a.group("name")).lower()
            if not _ATTR_NAME.fullmatch(name):
                raise _Unsupported(text)  # lxml would refuse to look it up
            attrs.append((name, a.group("op") or "", value))
            pos = a.end()
        else:  # pseudo-class or pseudo-element
            pos = _parse_pseudo(text, m, nots, anys, nested)
    if pos == start:
        raise _Unsupported(text)
    compound = Compound(tag, tuple(ids), frozenset(classes), tuple(attrs), tuple(nots), tuple(anys))
    return compound, pos


def _parse_pseudo(
    text: str,
    m: re.Match[str],
    nots: list[Compound],
    anys: list[tuple[Compound, ...]],
    nested: bool,
) -> int:
    name_match = _NAME.match(text, m.end())
    if name_match is None:
        raise _Unsupported(text)
    name = name_match.group(0).lower()
    pos = name_match.end()
    args = None
    if pos < len(text) and text[pos] == "(":
        close = text.find(")", pos)
        if close < 0 or "(" in text[pos + 1 : close]:
            raise _Unsupported(text)
        args, pos = text[pos + 1 : close], close + 1
    if m.group("pseudo") == "::" or name in _ELEMENT_PSEUDO:
        raise _Never(text)
    if name in _STRUCTURAL:
        if nested:  # inside :not() "always true" would turn into "never"
            raise _Never(text)
        return pos
    if name in ("not", "is", "where", "matches") and args is not None and not nested:
        options = []
        for piece in split_top_level(args):
            piece = piece.strip()
            try:
                compound, end = _parse_compound(piece, 0, nested=True)
            except _Never:
                if name == "not":
                    continue  # :not(:hover) holds on a static page
                raise
            if end != len(piece):
                raise _Unsupported(text)
            options.append(compound)
        if name == "not":
            nots.extend(options)
        elif options:
            anys.append(tuple(options))
        else:
            raise _Never(text)
        return pos
    raise _Never(text)  # :hover, :focus, :checked, :has()... are not static


# ------------------------------------------------------------------ stylesheets


@dataclass(frozen=True)
class Rule:
    """One selector of a style rule, with the rule's declarations and its place in order."""

    selector: Selector
    declarations: tuple[tuple[str, str, bool], ...]
    order: int
    specificity: tuple[int, int, int] = (0, 0, 0)


_CSS_TOKEN = re.compile(r"""[{};]|/\*|"(?:\\.|[^"\\])*"?|'(?:\\.|[^'\\])*'?""")
_MEDIA_RANGE = re.compile(r"([a-z-]+)\s*(<=|>=|<|>|=)(.*)")


def media_applies(query_list: str) -> bool:
    """Whether an @media query list holds on a 1280x800 desktop screen (unknown: no)."""
    if not query_list.strip():
        return True
    if len(query_list) > MAX_PRELUDE_CHARS:
        return False
    return any(_query_applies(q.strip()) for q in query_list.lower().split(","))


def _query_applies(query: str) -> bool:
    negate = query.startswith("not ")
    query = query.removeprefix("not ").removeprefix("only ").strip()
    pieces = [p.strip() for p in re.split(r"\band\b", query)]
    result = True
    for piece in pieces:
        if not piece:
            return False
        if piece in ("all", "screen"):
            continue
        if not piece.startswith("("):
            result = False  # print, speech, or something unknown
            continue
        applies = _feature_applies(piece)
        if applies is None:
            return False
        result = result and applies
    return result != negate


def _feature_applies(piece: str) -> bool | None:
    if not piece.endswith(")"):
        return None
    inner = piece[1:-1].strip()
    name, colon, value = (p.strip() for p in inner.partition(":"))
    op = rhs = None
    if not colon:
        m = _MEDIA_RANGE.fullmatch(inner)
        if m is not None:
            name, op, rhs = m.group(1), m.group(2), m.group(3).strip()
    width, height = VIEWPORT
    sizes = {"width": width, "height": height, "device-width": width, "device-height": height}
    if op is not None and rhs is not None:  # range syntax: (width >= 600px)
        limit = length_px(rhs)
        size = sizes.get(name)
        if limit is None or size is None:
            return None
        return {
            "<": size < limit,
            "<=": size <= limit,
            ">": size > limit,
            ">=": size >= limit,
            "=": size == limit,
        }[op]
    if not colon:
        return name in ("color", "hover", "pointer", "grid") or None
    for prefix, compare in (("min-", float.__ge__), ("max-", float.__le__)):
        if name.startswith(prefix) and name[len(prefix) :] in sizes:
            limit = length_px(value)
            if limit is None:
                return None
            return bool(compare(float(sizes[name[len(prefix) :]]), limit))
    known = {
        "orientation": "landscape",
        "prefers-color-scheme": "light",
        "hover": "hover",
        "pointer": "fine",
        "any-hover": "hover",
        "any-pointer": "fine",
        "prefers-reduced-motion": "no-preference",
        "scripting": "enabled",
    }
    if name in known:
        return value.strip() == known[name]
    return None


def read_stylesheets(texts: Iterable[str]) -> list[Rule]:
    """The style rules (with declarations that can hide text) of ``<style>`` texts."""
    rules: list[Rule] = []
    budget = MAX_STYLE_CHARS
    for text in texts:
        text = text[:budget]
        budget -= len(text)
        if not _read_one(text, rules) or budget <= 0:
            break
    return rules


def _read_one(text: str, rules: list[Rule]) -> bool:
    """Append the rules of one stylesheet; False once MAX_RULES rules were read."""
    skip = 0  # depth inside blocks that are skipped (@font-face, @media print...)
    start = 0
    count = len(rules)
    pos = 0
    while True:
        m = _CSS_TOKEN.search(text, pos)
        if m is None:
            return True
        token = m.group(0)
        pos = m.end()
        if token == "/*":
            end = text.find("*/", pos)
            pos = len(text) if end < 0 else end + 2
            if pos == len(text):
                return True
            continue
        if token[0] in "\"'":
            continue
        if token == ";":
            start = pos
            continue
        if token == "}":
            if skip:
                skip -= 1
            start = pos
            continue
        prelude = text[start : m.start()].strip()
        prelude = re.sub(r"/\*.*?\*/", " ", prelude, flags=re.DOTALL).strip()
        if skip or prelude.startswith("@"):
            low = prelude.lower()
            applies = (low.startswith("@media") and media_applies(low[6:])) or low.startswith(
                "@supports"
            )
            if skip or not applies:
                skip += 1
            start = pos
            continue
        end, pos = _block_end(text, pos)
        count += 1
        if count > MAX_RULES:
            return False
        declarations = tuple(parse_declarations(text[m.end() : end]))
        if declarations and len(prelude) <= MAX_PRELUDE_CHARS:
            for piece in split_top_level(prelude):
                selector = parse_selector(piece)
                if selector is not None:
                    rules.append(Rule(selector, declarations, len(rules), selector.specificity))
        start = pos


_SPLIT = re.compile(r"""[(),]|"[^"]*"?|'[^']*'?""")


def split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses and strings."""
    pieces: list[str] = []
    depth = start = 0
    for m in _SPLIT.finditer(text):
        token = m.group(0)
        if token == "(":
            depth += 1
        elif token == ")":
            depth = max(0, depth - 1)
        elif token == "," and depth == 0:
            pieces.append(text[start : m.start()])
            start = m.end()
    pieces.append(text[start:])
    return pieces


def _block_end(text: str, pos: int) -> tuple[int, int]:
    """Where the declaration block starting at ``pos`` ends, and the position after it."""
    while True:
        m = _CSS_TOKEN.search(text, pos)
        if m is None:
            return len(text), len(text)
        pos = m.end()
        if m.group(0) == "}":
            return m.start(), pos
        if m.group(0) == "/*":
            end = text.find("*/", pos)
            pos = len(text) if end < 0 else end + 2


# ---------------------------------------------------------------------- matching


class Matcher:
    """Finds the rules that apply to an element, within a budget of compound checks.

    Rules are indexed by their subject's id, a class or the tag, so an element is
    checked only against rules that can match it. Every compound checked (the subject,
    then ancestors for combinators) costs a step; once ``MAX_MATCH_STEPS`` are spent
    (a page built to make matching slow), an element is hidden whenever a rule that
    hides anything is indexed under its tag, id or a class: more is hidden, never less.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        unique: dict[tuple[Selector, tuple[tuple[str, str, bool], ...]], Rule] = {}
        for rule in rules:  # the same rule again only moves it later in the order
            same = (rule.selector, rule.declarations)
            unique.pop(same, None)
            unique[same] = rule
        self.rules = list(unique.values())
        self.steps = MAX_MATCH_STEPS
        self.by_key: dict[tuple[str, str], list[Rule]] = {}
        self.hiding: set[tuple[str, str]] = set()  # keys with a rule that hides
        for rule in self.rules:
            key = _index_key(rule.selector.subject)
            self.by_key.setdefault(key, []).append(rule)
            if _hides(rule.declarations):
                self.hiding.add(key)
        self.universal = self.by_key.get(("*", ""), [])

    def __bool__(self) -> bool:
        return bool(self.rules)

    @property
    def exhausted(self) -> bool:
        """Whether the budget ran out (matching is then by index key alone)."""
        return self.steps <= 0

    def _keys(self, info: Info) -> Iterator[tuple[str, str]]:
        tag, ident, classes = info
        yield ("*", "")
        yield ("tag", tag)
        if ident is not None:
            yield ("id", ident)
        for name in classes:
            yield ("class", name)

    def matching(self, el: Any, info: Info) -> list[Rule]:
        """The rules whose selector matches ``el``, in stylesheet order."""
        if self.exhausted:
            hides = any(key in self.hiding for key in self._keys(info))
            return [_HIDE] if hides else []
        found: list[Rule] = []
        tag, ident, classes = info
        groups: list[Sequence[Rule]] = [self.universal, self.by_key.get(("tag", tag), [])]
        if ident is not None:
            groups.append(self.by_key.get(("id", ident), []))
        if classes:
            for name in classes:
                by_class = self.by_key.get(("class", name))
                if by_class:
                    groups.append(by_class)
        for group in groups:
            for rule in group:
                self.steps -= 1
                if self._matches(rule.selector, el, info):
                    found.append(rule)
                if self.exhausted:
                    return self.matching(el, info)
        found.sort(key=lambda r: r.order)
        return found

    def _matches(self, selector: Selector, el: Any, info: Info) -> bool:
        if not selector.subject.matches(el, info):
            return False
        return len(selector.parts) == 1 or self._context(selector, len(selector.parts) - 2, el)

    def _context(self, selector: Selector, i: int, el: Any) -> bool:
        """Whether parts[:i+1] match the ancestors of ``el`` (with backtracking)."""
        if i < 0:
            return True
        compound, combinator = selector.parts[i], selector.combinators[i]
        parent = el.getparent()
        while parent is not None and self.steps > 0:
            self.steps -= 1
            if compound.matches(parent, element_info(parent)) and self._context(
                selector, i - 1, parent
            ):
                return True
            if combinator == ">":
                return False
            parent = parent.getparent()
        return False


def _index_key(subject: Compound) -> tuple[str, str]:
    if subject.ids:
        return ("id", subject.ids[0])
    if subject.classes:
        return ("class", max(subject.classes, key=len))  # the longest: likely the rarest
    if subject.tag:
        return ("tag", subject.tag)
    return ("*", "")


def _hides(declarations: Iterable[tuple[str, str, bool]]) -> bool:
    props = {name: value for name, value, _ in declarations}
    return removes(props) or not Computed().inherit(props).text_visible


_HIDE = Rule(Selector((Compound(),), ()), (("display", "none", True),), order=-1)


def cascade(rules: Iterable[Rule], inline: Iterable[tuple[str, str, bool]] = ()) -> dict[str, str]:
    """The winning value of each property: !important first, then inline, specificity, order."""
    entries: list[tuple[tuple[int, int, int, int, int, int], str, str]] = []
    for rule in rules:
        spec = rule.specificity
        for name, value, important in rule.declarations:
            entries.append(((int(important), 0, *spec, rule.order), name, value))
    for order, (name, value, important) in enumerate(inline):
        entries.append(((int(important), 1, 0, 0, 0, order), name, value))
    entries.sort(key=lambda e: e[0])
    return {name: value for _, name, value in entries}


# -------------------------------------------------------------------- visibility


@dataclass(frozen=True)
class Computed:
    """The inherited style that decides whether text directly in an element is readable."""

    invisible: bool = False  # visibility: hidden (a child may set it visible again)
    font_px: float = BASE_FONT_PX
    color: RGBA | None = None  # None: the page's default (unknown to us, taken as readable)
    background: RGBA | None = WHITE  # None: unknown (an image or gradient)

    @property
    def text_visible(self) -> bool:
        if self.invisible or self.font_px < MIN_FONT_PX:
            return False
        color = self.color
        if color is None:
            return True
        if color[3] <= MIN_OPACITY:
            return False
        if self.background is None:
            return True
        return contrast(blend(color, self.background), self.background) > MIN_CONTRAST

    def inherit(self, props: Mapping[str, str]) -> Computed:
        """The style of a child element that declares ``props``."""
        if not props:
            return self
        invisible, font_px, color, background = (
            self.invisible,
            self.font_px,
            self.color,
            self.background,
        )
        visibility = props.get("visibility")
        if visibility in ("hidden", "collapse"):
            invisible = True
        elif visibility == "visible":
            invisible = False
        size = _font_size(props, font_px)
        if size is not None:
            font_px = size
        if "color" in props:
            parsed = parse_color(props["color"])
            if parsed is not None or props["color"] not in ("inherit", "currentcolor"):
                color = parsed
        behind = _background(props)
        if behind is not None:
            if behind == "unknown":
                background = None
            elif background is not None and isinstance(behind, tuple):
                background = blend(behind, background)
        if (invisible, font_px, color, background) == (
            self.invisible,
            self.font_px,
            self.color,
            self.background,
        ):
            return self
        return Computed(invisible, font_px, color, background)


def _font_size(props: Mapping[str, str], parent_px: float) -> float | None:
    value = props.get("font-size")
    if value is None and "font" in props:
        for token in props["font"].split():
            head = token.split("/")[0]
            number = _number(head)
            if head in _FONT_KEYWORDS or (number is not None and (number[1] or number[0] == 0)):
                value = head  # a unitless number other than 0 is a font weight
                break
    if value is None:
        return None
    value = value.strip()
    if value in _FONT_KEYWORDS:
        return _FONT_KEYWORDS[value]
    if value == "smaller":
        return parent_px / 1.2
    if value == "larger":
        return parent_px * 1.2
    parsed = _number(value)
    if parsed is None:
        return None
    if parsed[1] == "%":
        return max(0.0, parent_px * parsed[0] / 100)
    px = length_px(value, parent_px)
    return None if px is None else max(0.0, px)


def _background(props: Mapping[str, str]) -> RGBA | str | None:
    """The background colour declared, "unknown" for an image, None if none declared."""
    image = props.get("background-image", "none")
    if image != "none":
        return "unknown"
    if "background-color" in props:
        return parse_color(props["background-color"]) or "unknown"
    value = props.get("background")
    if value is None:
        return None
    if "url(" in value or "gradient(" in value or "image-set(" in value or "var(" in value:
        return "unknown"
    if value in ("none", "transparent", "initial", "unset"):
        return (0.0, 0.0, 0.0, 0.0)
    for token in re.findall(r"#[0-9a-f]+|(?:rgba?|hsla?)\([^)]*\)|[a-z]+", value):
        color = parse_color(token)
        if color is not None:
            return color
    return None


def removes(props: Mapping[str, str], font_px: float = BASE_FONT_PX) -> bool:
    """Whether an element that declares ``props`` is hidden with everything in it."""
    if not props:
        return False
    if props.get("display", "").split()[:1] == ["none"]:
        return True
    if props.get("content-visibility") == "hidden":
        return True
    opacity = props.get("opacity")
    if opacity is not None:
        parsed = _number(opacity)
        if parsed is not None:
            value = parsed[0] / 100 if parsed[1] == "%" else parsed[0]
            if value <= MIN_OPACITY:
                return True
    return (
        _off_screen(props, font_px)
        or _collapsed(props, font_px)
        or _clipped(props, font_px)
        or _transformed_away(props)
    )


def _off_screen(props: Mapping[str, str], font_px: float) -> bool:
    for name in ("left", "top", "right", "bottom", "margin-left", "margin-top", "text-indent"):
        value = props.get(name)
        if value is not None:
            px = length_px(value.split()[0] if value.split() else value, font_px)
            if px is not None and px <= OFF_SCREEN_PX:
                return True
    margin = props.get("margin", "").split()
    sides = {1: (0, 0), 2: (0, 1), 3: (0, 1), 4: (0, 3)}.get(len(margin))
    if sides is not None:  # top and left of the margin shorthand
        for i in sides:
            px = length_px(margin[i], font_px)
            if px is not None and px <= OFF_SCREEN_PX:
                return True
    return False


def _collapsed(props: Mapping[str, str], font_px: float) -> bool:
    overflow = {props.get(n, "") for n in ("overflow", "overflow-x", "overflow-y")}
    if not any(o.split()[:1] and o.split()[0] in ("hidden", "clip") for o in overflow):
        return False
    for pad in ("padding", "padding-top", "padding-bottom"):
        for token in props.get(pad, "").split():
            px = length_px(token, font_px)
            if px is None or px > COLLAPSED_PX:
                return False  # a padded box (an aspect-ratio wrapper) still shows
    for name in ("width", "height", "max-width", "max-height"):
        value = props.get(name)
        if value is not None:
            parsed = _number(value)
            if parsed is not None and parsed[1] == "%" and parsed[0] <= 0:
                return True
            px = length_px(value, font_px)
            if px is not None and px <= COLLAPSED_PX:
                return True
    return False


_SHAPE = re.compile(r"(inset|circle|ellipse|polygon|rect)\(([^()]*)\)")


def _clipped(props: Mapping[str, str], font_px: float) -> bool:
    clip_path = props.get("clip-path")
    if clip_path is not None:
        m = _SHAPE.search(clip_path)
        if m is not None and _empty_shape(m.group(1), m.group(2), font_px):
            return True
    clip = props.get("clip")
    if clip is not None:
        m = _SHAPE.search(clip)
        if m is not None and m.group(1) == "rect":
            edges = [length_px(t, font_px) for t in re.split(r"[\s,]+", m.group(2).strip())]
            if len(edges) == 4 and all(e is not None for e in edges):
                top, right, bottom, left = (e or 0.0 for e in edges)
                if bottom - top <= COLLAPSED_PX or right - left <= COLLAPSED_PX:
                    return True
    return False


def _empty_shape(kind: str, args: str, font_px: float) -> bool:
    if kind == "inset":
        for token in args.split(" round ")[0].split():
            parsed = _number(token)
            if parsed is not None and parsed[1] == "%" and parsed[0] >= 50:
                return True
        return False
    if kind in ("circle", "ellipse"):
        radii = args.split(" at ")[0].split()
        sizes = [length_px(r, font_px) for r in radii]
        percents = [_number(r) for r in radii]
        return bool(radii) and any(
            s is not None and s <= 0 or (p is not None and p[1] == "%" and p[0] <= 0)
            for s, p in zip(sizes, percents, strict=True)
        )
    if kind == "polygon":
        points = {" ".join(p.split()) for p in args.split(",") if p.strip()}
        points = {p for p in points if p not in ("nonzero", "evenodd")}
        return len(points) <= 1
    return False


_TRANSFORM = re.compile(r"(translate[xy]?|scale[xy]?)\(([^()]*)\)")


def _transformed_away(props: Mapping[str, str]) -> bool:
    value = props.get("transform")
    if value is None:
        return False
    for name, args in _TRANSFORM.findall(value):
        numbers = [t for t in re.split(r"[\s,]+", args.strip()) if t]
        if name.startswith("scale"):
            values = [_number(t) for t in numbers]
            if any(v is not None and v[0] == 0 for v in values):
                return True
        else:
            for token in numbers:
                px = length_px(token)
                if px is not None and abs(px) >= -OFF_SCREEN_PX * 4:
                    return True
    return False
