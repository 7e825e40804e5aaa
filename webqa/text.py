"""The one text module: sentences, citation marks, declines, reasoning blocks, stop
words and keywords.

Shared by answer post-processing (webqa.answering), the reward models, the policies,
the passage shortlist and the search index, so that every part of webqa reads text the
same way. It imports nothing of webqa's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

# One citation mark: [3], [1, 2], [1; 4], [2-4] / [2–4] (a range, at most 20 wide).
_NUMBER = r"\d{1,3}(?:\s*[-–]\s*\d{1,3})?"
CITATION_RE = re.compile(rf"\[\s*({_NUMBER}(?:\s*[,;]\s*{_NUMBER})*)\s*\]")
_MAX_RANGE = 20
# A sentence ends at . ! or ? (plus closing quotes/brackets and any citation marks that
# follow), before whitespace or the end of the line.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)]*(?:\s*" + CITATION_RE.pattern + r")*(?=\s|$)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
# Words whose trailing period does not end a sentence.
_ABBREVIATIONS = frozenset(
    "e.g i.e cf vs mr mrs ms dr prof st jr sr fig figs approx ca inc ltd co mt jan feb "
    "aug sept oct nov dec".split()
)
_INITIALS = re.compile(r"^(?:[a-z]\.)*[a-z]$")  # "J" in "J. Smith", "U.S" in "U.S. Army"


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        ends = [int(x) for x in re.split(r"\s*[-–]\s*", part)]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= _MAX_RANGE:
            out.extend(range(ends[0], ends[1] + 1))
        else:
            out.extend(ends)
    return out


def find_citations(text: str) -> list[int]:
    """Every quote number ``text`` cites, in order, repeats kept.

    ``"A [1]. B [2, 3]. C [1][4-5]."`` -> ``[1, 2, 3, 1, 4, 5]``. Numbers are 1-based
    indexes into the quotes; nothing checks here that they exist.
    """
    return [n for m in CITATION_RE.finditer(text) for n in _numbers(m.group(1))]


def remove_citations(text: str, keep: Callable[[int], bool] | None = None) -> str:
    """``text`` without the citation numbers ``keep`` rejects (all of them when None).

    A mark left with some numbers is rewritten as ``[a, b]``; one left with none goes,
    with the space before it. ``"Paris [1, 9]."`` with ``keep=lambda n: n <= 3`` ->
    ``"Paris [1]."``; with ``keep=None`` -> ``"Paris."``.
    """

    def rewrite(match: re.Match[str]) -> str:
        numbers = _numbers(match.group(1))
        kept = [n for n in numbers if keep is not None and keep(n)]
        if len(kept) == len(numbers):
            return match.group(0)
        return "[" + ", ".join(str(n) for n in kept) + "]" if kept else ""

    out = CITATION_RE.sub(rewrite, text)
    out = re.sub(r"[ \t]+([.,;:!?])", r"\1", out)
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, citation marks kept with the sentence they follow.

    Lines split too (paragraphs, list items; list markers are dropped). A period after a
    common abbreviation ("e.g.", "Dr.") or a single-letter initial does not end a
    sentence, nor does one inside a number ("3.5").
    """
    sentences: list[str] = []
    for raw_line in text.splitlines():
        line = _LIST_MARKER.sub("", raw_line).strip()
        start = 0
        for match in _BOUNDARY.finditer(line):
            if match.group(0).startswith(".") and _is_abbreviation(line[start : match.start()]):
                continue
            piece = line[start : match.end()].strip()
            if piece:
                sentences.append(piece)
            start = match.end()
        rest = line[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


def _is_abbreviation(before: str) -> bool:
    words = before.split()
    if not words:
        return False
    word = words[-1].lower().lstrip("(\"'“")
    return bool(_INITIALS.match(word)) or word in _ABBREVIATIONS


_DECLINE_RE = re.compile(
    r"\b(?:"
    r"(?:could ?n[o']t|can ?n[o']t|can not|unable to|(?:was|were)(?: not|n't) able to|"
    r"did ?n[o']t|failed to) (?:find|answer|determine|locate|confirm|verify|tell)"
    r"|no (?:information|relevant|mention|evidence|answer|data|details)"
    r"|(?:do|does|did) ?n[o']t (?:know|say|mention|specify|state|contain|provide|address)"
    r"|not (?:mentioned|stated|specified|provided|given|enough information|sufficient)"
    r"|(?:will|would) not answer|insufficient (?:information|evidence)"
    r")\b",
    re.IGNORECASE,
)


def is_decline(sentence: str) -> bool:
    """True for a sentence that says the answer was not found or will not be given."""
    return bool(_DECLINE_RE.search(sentence))


# -- reasoning blocks ------------------------------------------------------------

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"^\s*<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)


def strip_think(text: str) -> str:
    """``text`` without reasoning blocks (see the module docstring), leading space removed."""
    text = _THINK_BLOCK.sub("", text)
    if _THINK_OPEN.match(text):  # opened and never closed: all of it was thinking
        return ""
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:  # the opening tag was part of the prompt
        text = text[closes[-1].end() :]
    return text.lstrip()


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped ("" when there is none)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


# Common English function words plus question words: they say nothing about which page
# holds the answer. Content words that happen to be frequent ("world", "year") are left
# to BM25's inverse document frequency.
STOP_WORDS = frozenset(
    """
    a about above according after again against all also am an and any are as at be
    because been before being below between both but by can could did do does doing
    done down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just let me more most my
    myself no nor not now of off on once only or other ought our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up upon us very was we were
    what when where whether which while who whom whose why will with within without
    would you your yours yourself yourselves s t d ll m re ve
    """.split()
)


_WORD = re.compile(r"\w+")


def keywords(text: str) -> set[str]:
    """Lower-cased words that are not stop words, cut to five letters ("exports" and
    "export", "commodities" and "commodity" meet)."""
    words = (w.lower() for w in _WORD.findall(text))
    return {w[:5] for w in words if w not in STOP_WORDS and (len(w) > 2 or w.isdigit())}


def new_keywords(question: str, text: str) -> set[str]:
    """The keywords of ``text`` (citation marks aside) that ``question`` does not have:
    what an answer adds to its question."""
    return keywords(remove_citations(text)) - keywords(question)


def keyword_overlap(question: str, texts: Sequence[str]) -> list[float]:
    """For each text, the share of the question's keywords it contains, each keyword
    weighted by its rarity among ``texts`` (inverse document frequency); in [0, 1]."""
    keys = keywords(question)
    bags = [keywords(t) for t in texts]
    if not keys or not bags:
        return [0.0] * len(texts)
    n = len(bags)
    weight = {k: math.log((n + 1) / (sum(k in b for b in bags) + 0.5)) for k in keys}
    total = sum(weight.values())
    if total <= 0:
        return [0.0] * len(texts)
    return [sum(w for k, w in weight.items() if k in bag) / total for bag in bags]
