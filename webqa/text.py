"""The one text module: sentences, citation marks, declines, reasoning blocks, stop
words, keywords and unprintable characters.

Shared by answer post-processing (webqa.answering), the reward models, the policies,
the passage shortlist, the search index and the live web, so that every part of webqa
reads text the same way: one sentence splitter (``split_sentences``), one citation mark.
It imports nothing of webqa's.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence

import tantivy

from webqa.values import Quote

# One citation mark: [3], [1, 2], [1; 4], [2-4] / [2–4] (a range, at most 20 wide).
_NUMBER = r"\d{1,3}(?:\s*[-–]\s*\d{1,3})?"
CITATION_RE = re.compile(rf"\[\s*({_NUMBER}(?:\s*[,;]\s*{_NUMBER})*)\s*\]")
_MAX_RANGE = 20
# A sentence ends at . ! or ? (plus closing quotes/brackets and any citation marks that
# follow), before white space or the end of the text, unless the next word starts in
# lowercase or the period closes an abbreviation or an initial.
END_MARKS = ".!?"
_BOUNDARY = re.compile(rf"[{END_MARKS}]+[\"'”’)]*(?:\s*" + CITATION_RE.pattern + r")*(?=\s|$)")
_NEXT_CHAR = re.compile(r"\s*(\S)")
_WORD_BEFORE = re.compile(r"(\S+)$")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
# Words whose trailing period does not end a sentence.
_ABBREVIATIONS = frozenset(
    "e.g i.e cf vs mr mrs ms dr prof st jr sr fig figs approx ca est inc ltd co mt jan feb "
    "aug sept oct nov dec".split()
)
_INITIALS = re.compile(r"^(?:[a-z]\.)*[a-z]$")  # "J" in "J. Smith", "U.S" in "U.S. Army"
# Abbreviations only before a number ("No. 5", "vol. 2", "Op. 27", "A.D. 711"; but "he
# said no. Then").
_BEFORE_NUMBERS = frozenset("no nos vol vols pp ch art sec op a.d".split())
# Not initials: era marks and Roman numerals end sentences as often as not ("in 500
# B.C. The", "World War I. In"), unless another initial comes first ("M. V. Lomonosov").
_ERAS = frozenset("b.c a.d b.c.e c.e".split())
_INITIAL = re.compile(r"[A-Z]\.")


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

    out = close_up(CITATION_RE.sub(rewrite, text))
    return re.sub(r"[ \t]{2,}", " ", out).strip()


def close_up(text: str) -> str:
    """``text`` without the spaces a removed citation mark left before punctuation
    ("Paris [1]." less its mark: "Paris .", closed up to "Paris.")."""
    return _SPACE_BEFORE_STOP.sub(r"\1", text)


_SPACE_BEFORE_STOP = re.compile(r"[ \t]+([.,;:!?])")


def sentence_ends(text: str) -> list[int]:
    """Where the sentences of ``text`` end: the offsets just after each end mark (. ! or ?,
    with the closing quotes, brackets and citation marks after it). Line breaks are white
    space here, not ends; see ``split_sentences`` for the rules."""
    ends = []
    for match in _BOUNDARY.finditer(text):
        following = _NEXT_CHAR.match(text, match.end())
        after = following.group(1) if following else ""
        if after.islower():
            continue  # "etc. and", "the U.S. and": a sentence does not start in lowercase
        if match.group(0).startswith(".") and _is_abbreviation(text, match.start(), after):
            continue
        ends.append(match.end())
    return ends


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, citation marks kept with the sentence they follow.

    Lines split too (paragraphs, list items; list markers are dropped). A sentence ends
    at . ! or ? before white space, unless the next word starts in lowercase, or the
    period follows a common abbreviation ("e.g.", "Dr.") or an initial ("J. Smith",
    "U.S."); a period inside a number ("3.5") is not followed by white space. The one
    splitter of webqa: the shortlist, the search index's snippets, the reward models and
    the answer constraint (``last_sentence``) all read sentences this way.
    """
    sentences: list[str] = []
    for raw_line in text.splitlines():
        line = _LIST_MARKER.sub("", raw_line).strip()
        start = 0
        for end in sentence_ends(line):
            piece = line[start:end].strip()
            if piece:
                sentences.append(piece)
            start = end
        rest = line[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


def last_sentence(text: str) -> str:
    """The sentence ``text`` ends in (all of it after its last sentence end). A line break
    alone ends nothing here ("...the dome\n[1]" still cites the dome): for text being
    written, such as an answer checked as it is decoded."""
    ends = sentence_ends(text)
    return text[ends[-1] :] if ends else text


def _is_abbreviation(text: str, at: int, after: str) -> bool:
    """Whether the period at ``text[at]`` closes an abbreviation or an initial; ``after``
    is the character that follows it past white space. Only the word before it is read,
    so a long run of them costs linear time."""
    word = _WORD_BEFORE.search(text, max(0, at - 40), at)
    if not word:
        return False
    bare = word.group(1).lstrip("(\"'“")
    low = bare.lower()
    if low in _ABBREVIATIONS or (low in _BEFORE_NUMBERS and after.isdigit()):
        return True
    if low in _ERAS or not _INITIALS.match(low):
        return False
    if bare in ("I", "V", "X"):
        start = at - len(bare)
        previous = _WORD_BEFORE.search(text, max(0, start - 40), start - 1) if start else None
        return bool(previous and _INITIAL.fullmatch(previous.group(1)))
    return True


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


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})  # Unicode categories dropped


def strip_unprintable(text: str) -> str:
    """``text`` without control, format (bidirectional overrides), surrogate, private-use
    and unassigned characters, which could rewrite a terminal or reorder what a reader
    sees; white space becomes plain spaces. For untrusted text from the web."""
    return "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _UNPRINTABLE
    )


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


def core_title(title: str) -> str:
    """A title without its site suffix ("Mexico - The World Factbook" -> "Mexico")."""
    return title.rsplit(" - ", 1)[0] if " - " in title else title


def keywords(text: str) -> set[str]:
    """The stems of the words that are not stop words ("exports" and "export",
    "commodities" and "commodity" meet; "Arabic" and "Arabia", "Niger" and "Nigeria"
    do not)."""
    words = (w.lower() for w in _WORD.findall(text))
    return {stem(w) for w in words if w not in STOP_WORDS and (len(w) > 2 or w.isdigit())}


KIN_PREFIX = 5  # letters two words must share to name the same thing ...
KIN_TAIL = 3  # ... with at most this many more after them in each


def same_thing(a: str, b: str) -> bool:
    """Whether two analysed terms name the same thing: equal, or sharing their first
    ``KIN_PREFIX`` letters or more with at most ``KIN_TAIL`` letters after that shared
    beginning in each: a country and its people ("belgium" and "belgian", "brazil" and
    "brazilian", "india" and "indian"), not "austria" and "australian"."""
    if a == b:
        return True
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return (
        shared >= KIN_PREFIX
        and len(a) - shared <= KIN_TAIL
        and len(b) - shared <= KIN_TAIL
        and a.isalpha()
        and b.isalpha()
    )


MIN_SHARED_PREFIX = 5  # a stem this long that begins another names the same thing


def meets(words: Iterable[str], others: Collection[str]) -> set[str]:
    """The ``words`` (stems, from ``keywords``) that one of ``others`` names: the same
    stem, or one begins the other and the shorter has at least five letters ("pakistan"
    and "pakistani", "india" and "indian": a stemmer leaves a country and its people
    apart)."""
    found = set()
    for word in words:
        if word in others:
            found.add(word)
        elif len(word) >= MIN_SHARED_PREFIX and any(
            len(o) >= MIN_SHARED_PREFIX and (o.startswith(word) or word.startswith(o))
            for o in others
        ):
            found.add(word)
    return found


def says_all(wanted: Collection[str], text: str) -> bool:
    """Whether ``text`` (citation marks aside) says every one of the ``wanted``
    keywords (stems, from ``keywords``), as ``meets`` matches them."""
    wanted = set(wanted)
    return meets(wanted, keywords(remove_citations(text))) == wanted


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """``word`` lower-cased, accents folded and stemmed (Snowball's English stemmer, the
    one the search index uses)."""
    return "".join(_stemmer().analyze(word)) or word.lower()


@functools.cache
def _stemmer() -> tantivy.TextAnalyzer:
    return analyzer()


def analyzer() -> tantivy.TextAnalyzer:
    """Words split on non-alphanumerics, lowercased, accents folded, English-stemmed
    (the search index's analyzer; words over 40 characters are dropped)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


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


# -- what a question names, and what quotes say ------------------------------------


def names(question: str) -> list[str]:
    """The names ``question`` gives: its capitalised words of three letters or more,
    not stop words, past the first word of their sentence ("Give the year." gives
    none), and the years it gives (a number of four digits: "the 2035 Nobel Prize"
    names one prize of many, as "Yuzuru Hanyu" names one skater), each once. A question
    written all in capitals gives no words, only its years."""
    found: list[str] = []
    for sentence in split_sentences(question):
        words = _WORD.findall(sentence)
        for i, word in enumerate(words):
            if _YEAR.fullmatch(word) or (
                i > 0
                and not question.isupper()
                and word[:1].isupper()
                and len(word) > 2
                and word.lower() not in STOP_WORDS
            ):
                if word not in found:
                    found.append(word)
    return found


_YEAR = re.compile(r"\d{4}")
_ARTICLES = frozenset({"the", "a", "an"})
MAX_DESCRIPTOR_WORDS = 3  # "the military commander Jan Žižka", "the opera tenor ..."


def descriptors(question: str) -> list[str]:
    """The words that describe a name ``question`` gives, set before it between an
    article and the name ("actress" of "the actress Ingrid Bergman", "military" and
    "commander" of "the military commander Jan Žižka"), at most
    ``MAX_DESCRIPTOR_WORDS`` lower-case words, no stop word among them, each once. They
    say what the name is, not what is asked of it: "the capital of Belize" and "the
    highest point in Burkina Faso" give none."""
    given = set(names(question))  # each one word
    found: list[str] = []
    for sentence in split_sentences(question):
        words = _WORD.findall(sentence)
        for i, word in enumerate(words):
            if word.lower() not in _ARTICLES:
                continue
            run = list(
                itertools.takewhile(
                    lambda w: w[:1].islower() and w not in STOP_WORDS,
                    words[i + 1 : i + 2 + MAX_DESCRIPTOR_WORDS],
                )
            )
            after = i + 1 + len(run)
            if run and len(run) <= MAX_DESCRIPTOR_WORDS and after < len(words):
                if words[after] in given:
                    found.extend(w for w in run if w not in found)
    return found


def relation(question: str) -> set[str]:
    """What ``question`` asks of what it names: its keywords less those of its
    ``names`` and their ``descriptors`` ("highest" and "point" of "What is the highest
    point in Burkina Faso?"; "author", "die" and "year" of "In what year did the
    author of Les Misérables die?"; "highest", "point", "home" and "country", not
    "actress", of "... the home country of the actress Ingrid Bergman?"), or all its
    keywords where that leaves none."""
    asked = keywords(question)
    given = " ".join(names(question) + descriptors(question))
    return asked - keywords(given) or asked


def unnamed(question: str, quotes: Sequence[Quote]) -> list[str]:
    """The ``names`` of ``question`` that no quote names, in its text or its page's
    title: quotes about a Yuzuru Hanyu do not answer a question about a Yuzuru
    Kurosawa."""
    have = said_by(quotes, site=True)
    return [n for n in names(question) if not meets([stem(n.lower())], have)]


def said_by(quotes: Sequence[Quote], *, site: bool = False) -> set[str]:
    """The keywords ``quotes`` say: each one's text and its page's title, which the
    answer prompt shows with it (a page about Bratislava that says "Capital and largest
    city of Slovakia" says that Bratislava is the capital), less a site's name after it
    ("- The World Factbook": naming the source is not an answer) unless ``site`` (a
    question that names the site is answered from its pages)."""

    def title(q: Quote) -> str:
        return q.title if site else core_title(q.title)

    return set().union(set(), *(keywords(f"{title(q)} {q.text}") for q in quotes))
