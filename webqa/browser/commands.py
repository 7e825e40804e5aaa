"""Browser commands: parse and format the one-line commands the model emits."""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from webqa.browser.page import normalize
from webqa.errors import WebQAError
from webqa.text import KIN_PREFIX, same_thing
from webqa.values import EndReason

MAX_TEXT_CHARS = 200  # longest Search query or Find text
MAX_LINK_ID_DIGITS = 9  # longest link id read
QUOTE_SEP = "━"  # U+2501, separates start and end in "Quote: <start>━<end>"
MAX_WORD_CHARS = 40  # longest word of such a query
MAX_CHOICES = 64  # most whole commands ``CommandConstraint.choices`` lists
MAX_QUOTE_CHOICES = 16  # and most quotes from one passage (the shortest)
_WORD = re.compile(r"\w+")


class InvalidCommandError(WebQAError):
    """A line that is not a browser command."""


@dataclass(frozen=True)
class Search:
    """``Search <query>``."""

    query: str


@dataclass(frozen=True)
class ClickLink:
    """``Clicked on link <id>``."""

    link_id: int


@dataclass(frozen=True)
class FindInPage:
    """``Find in page: <text>``."""

    text: str


@dataclass(frozen=True)
class QuoteText:
    """``Quote: <text>``, or ``Quote: <start>━<end>`` when ``end`` is set."""

    text: str
    end: str | None = None


@dataclass(frozen=True)
class Scroll:
    """``Scrolled down <n>`` (n > 0) or ``Scrolled up <-n>`` (n < 0), |n| in 1-3."""

    windows: int


@dataclass(frozen=True)
class Top:
    """``Top``."""


@dataclass(frozen=True)
class Back:
    """``Back``."""


@dataclass(frozen=True)
class End:
    """``End: Answer``, ``End: Nonsense`` or ``End: Controversial``."""

    reason: EndReason  # answer, nonsense or controversial (the others are the browser's)


Command = Search | ClickLink | FindInPage | QuoteText | Scroll | Top | Back | End


class ActionRecord(NamedTuple):
    """One step of a trajectory: the command as shown, whether it took effect, a note."""

    text: str
    valid: bool
    message: str = ""


_END_WORDS: dict[str, EndReason] = {
    "Answer": "answer",
    "Nonsense": "nonsense",
    "Controversial": "controversial",
}
_SCROLLS = {"Scrolled down ": 1, "Scrolled up ": -1}
_USAGES = {
    "Search": "Search <query>",
    "Clicked on link": "Clicked on link <id>",
    "Find in page:": "Find in page: <text>",
    "Quote:": "Quote: <text>",
    "Scrolled down": "Scrolled down <1|2|3>",
    "Scrolled up": "Scrolled up <1|2|3>",
    "Top": "Top",
    "Back": "Back",
    "End:": "End: Answer|Nonsense|Controversial",
}


def _text_arg(name: str, arg: str) -> str:
    arg = arg.strip()
    if not arg:
        raise InvalidCommandError(f"{name} needs text after it")
    if len(arg) > MAX_TEXT_CHARS:
        raise InvalidCommandError(f"{name} text is over {MAX_TEXT_CHARS} characters")
    return arg


def parse_command(text: str) -> Command:
    """The command ``text`` spells; raises InvalidCommandError saying what is wrong."""
    line = text.strip()
    if not line:
        raise InvalidCommandError("empty command")
    if "\n" in line or "\r" in line:
        raise InvalidCommandError("a command must be one line")
    if line == "Top":
        return Top()
    if line == "Back":
        return Back()
    if line.startswith("Search "):
        return Search(_text_arg("Search", line[len("Search ") :]))
    if line.startswith("Find in page:"):
        return FindInPage(_text_arg("Find in page", line[len("Find in page:") :]))
    if line.startswith("Quote:"):
        return _parse_quote(line[len("Quote:") :])
    if line.startswith("Clicked on link "):
        arg = line[len("Clicked on link ") :].strip()
        if not arg.isdigit() or not arg.isascii():
            raise InvalidCommandError(f"link id must be a number, got {arg!r}")
        if len(arg) > MAX_LINK_ID_DIGITS:  # int() refuses over 4,300 digits; no page has so many
            raise InvalidCommandError(f"there is no link {arg[:MAX_LINK_ID_DIGITS]}…")
        return ClickLink(int(arg))
    for prefix, sign in _SCROLLS.items():
        if line.startswith(prefix):
            arg = line[len(prefix) :].strip()
            if arg not in ("1", "2", "3"):
                raise InvalidCommandError(f"scroll amount must be 1, 2 or 3, got {arg!r}")
            return Scroll(sign * int(arg))
    if line.startswith("End:"):
        word = line[len("End:") :].strip()
        if word not in _END_WORDS:
            raise InvalidCommandError(
                f"End must be followed by Answer, Nonsense or Controversial, got {word!r}"
            )
        return End(_END_WORDS[word])
    raise InvalidCommandError(_unknown(line))


def _parse_quote(arg: str) -> QuoteText:
    parts = [p.strip() for p in arg.split(QUOTE_SEP)]
    if len(parts) > 2:
        raise InvalidCommandError(f"a quote may hold at most one {QUOTE_SEP}")
    if not all(parts):
        what = "start and end" if len(parts) == 2 else "text"
        raise InvalidCommandError(f"Quote needs {what}")
    return QuoteText(parts[0], parts[1] if len(parts) == 2 else None)


def _unknown(line: str) -> str:
    for keyword, usage in _USAGES.items():
        if line == keyword.rstrip(":"):
            return f"{keyword.rstrip(':')} needs an argument: {usage}"
        if line.casefold().startswith(keyword.casefold().rstrip(":")):
            return f"unknown command (commands are case-sensitive: did you mean {usage!r}?)"
    return f"unknown command; expected one of: {', '.join(_USAGES)}"


def format_command(cmd: Command) -> str:
    """The canonical text of ``cmd`` (``parse_command`` reads it back)."""
    match cmd:
        case Search(query):
            return f"Search {query}"
        case ClickLink(link_id):
            return f"Clicked on link {link_id}"
        case FindInPage(text):
            return f"Find in page: {text}"
        case QuoteText(text, None):
            return f"Quote: {text}"
        case QuoteText(text, end):
            return f"Quote: {text}{QUOTE_SEP}{end}"
        case Scroll(windows):
            return f"Scrolled {'down' if windows > 0 else 'up'} {abs(windows)}"
        case Top():
            return "Top"
        case Back():
            return "Back"
        case End(reason):
            return f"End: {reason.capitalize()}"
    raise TypeError(f"not a command: {cmd!r}")


_LONG_SPACE = re.compile(r"\s{4,}")  # a model padding a quote with spaces
_SPACES = re.compile(r"\s+")


def _collapse(text: str) -> str:
    """Whitespace runs to one space, case kept (aligned with ``normalize``'s offsets)."""
    return _SPACES.sub(" ", text)


_KINDS = {
    "Clicked on link": "Click",
    "Find in page:": "Find",
    "Scrolled": "Scroll",
    "End: Answer": "End: Answer",
    "End:": "End",
}


def _kind(command: str) -> str:
    """The kind of a command for ``CommandConstraint(kinds=...)``: Search, Click, Find,
    Quote, Scroll, Top, Back, End: Answer or End (nonsense/controversial)."""
    for prefix, kind in _KINDS.items():
        if command.startswith(prefix):
            return kind
    return command.split(":")[0].split(" ")[0]


class CommandConstraint:
    """Constrained decoding of a command valid on the current page (canonical form only).

    ``allows(text)``: ``text`` is a prefix of a valid command; ``complete(text)``: it is
    one. Link ids must exist, quotes must occur in ``page_plain_text`` (empty: no quoting).
    ``exclude`` lists whole commands that would only repeat what was already done (the
    same search again, the same link again from the same page); they are not complete.
    ``kinds`` (None: all) keeps only those kinds of command (see ``_kind``);
    ``quote_starts`` (None: anywhere) maps the offsets in the normalised page text where
    a quote may begin to the least offset where it may end; ``quote_ends`` (None:
    anywhere) are the offsets where a whole quote may end. ``exact`` quotes must keep the
    page's letter case and single spaces (quotes still match loosely when carried out;
    this only stops a model from spelling a quote in odd cases and spacing).
    ``search_words`` (None: any text) keeps a Search to at most ``max_search_words``
    different words, each one of these words or one that names the same thing (see
    ``_word_ok``): a query a model writes stays short and on topic; with
    ``search_needs``, a whole query also has one of those words (the same way). With
    ``search_kin`` (None: any), a word named the same as one of ``search_words`` is
    one of these too: a word the pages read use ("Belgium" where the Antwerp page says
    it), not one the decoder makes up within the rule ("attenM" from "attend").
    """

    def __init__(
        self,
        link_ids: Iterable[int],
        page_plain_text: str,
        *,
        page_open: bool = True,
        can_go_back: bool = True,
        can_answer: bool = True,
        exclude: Iterable[str] = (),
        kinds: Collection[str] | None = None,
        quote_starts: Mapping[int, int] | None = None,
        quote_ends: Collection[int] | None = None,
        exact: bool = False,
        search_words: Iterable[str] | None = None,
        max_search_words: int = 6,
        search_needs: Iterable[str] | None = None,
        search_kin: Iterable[str] | None = None,
    ) -> None:
        self._exclude = frozenset(exclude)
        self._max_words = max_search_words
        self._words: frozenset[str] | None = None
        # the first KIN_PREFIX letters of a word -> the words that begin with them: a
        # query word may be one of them or name the same thing (``same_thing``)
        self._kin: dict[str, list[str]] = {}
        # every beginning of a word -> the words that begin so
        self._grows: dict[str, set[str]] = {}
        if search_words is not None:
            self._words = frozenset(w.casefold() for w in search_words)
            for w in self._words:
                for i in range(1, len(w) + 1):
                    self._grows.setdefault(w[:i], set()).add(w)
            self._letters = frozenset("".join(self._words))  # the letters they use
            for w in self._words:
                if len(w) >= KIN_PREFIX:
                    self._kin.setdefault(w[:KIN_PREFIX], []).append(w)
        # the words named the same as a given one that a query may use (None: any)
        self._derived: frozenset[str] | None = None
        if self._words is not None and search_kin is not None:
            given = self._words
            self._derived = frozenset(
                v
                for v in {k.casefold() for k in search_kin}
                if v not in given and self._word_ok(v, whole=True)
            )
            for v in self._derived:
                for i in range(1, len(v) + 1):
                    self._grows.setdefault(v[:i], set()).add(v)
        self._needs: frozenset[str] | None = None
        if search_needs is not None:
            self._needs = frozenset(w.casefold() for w in search_needs)
        self._exact = exact
        self._fold = _collapse if exact else normalize
        # offset where a quote may begin -> the least offset where it may end
        self._starts = None if quote_starts is None else dict(quote_starts)
        self._ends = None if quote_ends is None else frozenset(quote_ends)
        fixed = ["End: Nonsense", "End: Controversial", "Search "]
        fixed += [f"Clicked on link {i}" for i in link_ids]
        if can_answer:
            fixed.append("End: Answer")
        if can_go_back:
            fixed.append("Back")
        if page_open:
            fixed += ["Top", "Find in page: "]
            fixed += [f"Scrolled {way} {n}" for way in ("down", "up") for n in (1, 2, 3)]
        self._page = self._fold(page_plain_text) if page_plain_text.strip() else ""
        if self._page:
            fixed.append("Quote: ")
        fixed = [c for c in fixed if c not in self._exclude]
        if kinds is not None:
            fixed = [c for c in fixed if _kind(c) in kinds]
        self._fixed = tuple(fixed)
        self._complete = frozenset(c for c in fixed if not c.endswith(" "))
        self._prefixes = frozenset(c[:i] for c in fixed for i in range(len(c) + 1))
        self._open = [k for k in ("Search ", "Find in page: ", "Quote: ") if k in fixed]
        self._cache: dict[str, int] = {}  # normalized needle -> first index (-1: none)

    def _find(self, needle: str) -> int:
        hit = self._cache.get(needle)
        if hit is None:
            if len(self._cache) > 50_000:
                self._cache.clear()
            hit = self._cache[needle] = self._page.find(needle)
        return hit

    def _quote_ok(self, arg: str, whole: bool) -> bool:
        """A canonical quote argument (no space at its ends or around ━) on the page."""
        if not arg:
            return not whole
        start, sep, end = arg.partition(QUOTE_SEP)
        if start[:1].isspace() or end[:1].isspace() or QUOTE_SEP in end:
            return False
        if (sep and (not start or start != start.rstrip())) or (whole and arg != arg.rstrip()):
            return False
        if self._exact and "  " in arg:
            return False
        needle = self._fold(start)
        if self._starts is not None:  # the quote must begin at one of these offsets
            if sep:
                return False
            return any(
                self._page.startswith(needle, at)
                and (
                    not whole
                    or (
                        at + len(needle) >= least
                        and (self._ends is None or at + len(needle) in self._ends)
                    )
                )
                for at, least in self._starts.items()
            )
        first = self._find(needle)
        if not sep or first < 0:
            return first >= 0
        after = first + len(needle)
        if not end:
            return not whole and bool(self._page[after:].strip())
        return self._page.find(self._fold(end), after) >= 0

    def _check(self, text: str, whole: bool) -> bool:
        for keyword in self._open:
            if text.startswith(keyword):
                arg = text[len(keyword) :]
                if "\n" in arg or "\r" in arg or _LONG_SPACE.search(arg):
                    return False
                if keyword == "Quote: ":
                    return self._quote_ok(arg, whole)
                if len(arg) > MAX_TEXT_CHARS or arg[:1].isspace():
                    return False
                if keyword == "Search " and self._words is not None:
                    return self._search_ok(arg, whole)
                return not whole or (bool(arg) and arg == arg.rstrip())
        return False

    def _search_ok(self, arg: str, whole: bool) -> bool:
        """A query of at most ``max_search_words`` different words of ``search_words``."""
        words = arg.split(" ")
        if len(words) > self._max_words or "" in words[:-1] or (whole and not words[-1]):
            return False
        last = len(words) - 1
        if not all(self._word_ok(w.casefold(), whole or i < last) for i, w in enumerate(words)):
            return False
        done = [w.casefold() for w in (words if whole else words[:-1])]
        if len(set(done)) < len(done):  # no word twice ("1911 and 1911")
            return False
        if not whole and not self._completes(words[-1].casefold(), set(done)):
            # a grammar that admits a beginning it can never complete leaves the decoder
            # writing on ("Capital Capital", "1862 ... 186") until its budget runs out
            return False
        return not whole or self._needs is None or any(map(self._needed, words))

    def _completes(self, part: str, done: set[str]) -> bool:
        """Whether ``part``, the query's last word on its way, can still end as a word
        the query has not used: a given word it begins, or ``part`` itself as a word
        named the same as a given one (``_word_ok``)."""
        if not part:
            return True
        if any(w not in done for w in self._grows.get(part, ())):
            return True
        return part not in done and self._word_ok(part, whole=True)

    def _needed(self, word: str) -> bool:
        """Whether ``word`` is one of ``search_needs``, or names the same thing as one
        (``same_thing``)."""
        folded = word.casefold()
        needs = self._needs or frozenset()
        return folded in needs or any(same_thing(folded, n) for n in needs)

    def _word_ok(self, word: str, whole: bool) -> bool:
        """A whole query word is one of the words, or one that names the same thing as
        one of them and no longer (``same_thing``: "Belgium" from "Belgian", "India" from
        "Indian"; not "independemic" from "independent", nor "Norway" from "Norwegian",
        which share only four letters); a part of one is on its way to that."""
        if not word:
            return not whole
        if len(word) > MAX_WORD_CHARS or not _WORD.fullmatch(word):
            return False
        words = self._words or frozenset()
        if word in words:
            return True
        if self._derived is not None:
            return word in self._derived or (not whole and word in self._grows)
        if len(word) < KIN_PREFIX:
            return not whole and word in self._grows
        kin = self._kin.get(word[:KIN_PREFIX], [])
        return (
            (word.isascii() or set(word) <= self._letters)  # not "India的"
            and any(
                # named the same and no longer ("India" from "Indian", "Belgium" from
                # "Belgian"; not "independemic" from "independent", "Sultamib" from
                # "Sultan")
                (same_thing(word, w) and len(word) <= len(w) and not word.startswith(w))
                or (not whole and w.startswith(word))
                for w in kin
            )
            and not any(word[:i] in words for i in range(3, len(word)))  # "countryis"
        )

    def allows(self, text: str) -> bool:
        """Whether ``text`` can still grow into a valid command."""
        return text in self._prefixes or self._check(text, whole=False)

    def complete(self, text: str) -> bool:
        """Whether ``text`` is a whole valid command."""
        if text in self._exclude:
            return False
        return text in self._complete or self._check(text, whole=True)

    def only(self) -> str | None:
        """The one command this grammar admits, or None where there is a choice (the
        guided grammar's ``End: Answer`` once a page has no passage left to quote):
        such a step needs no model call."""
        if len(self._fixed) == 1 and self._fixed[0] in self._complete:
            return self._fixed[0]
        return None

    def choices(self, limit: int = MAX_CHOICES) -> tuple[str, ...] | None:
        """The whole commands this grammar admits, in its order (results in link order,
        each passage's quotes shortest first), or None where they cannot be listed: a
        Search or Find is open (its text is the model's), a quote may start or end
        anywhere, or the other commands are more than ``limit``. A quote may run on to
        any later place to end, to the page's end: the list keeps each passage's
        shortest quotes, at most ``MAX_QUOTE_CHOICES`` and as many as the ``limit`` leaves
        room for (at least the passage itself). A model behind a server is held to such a list
        (``webqa.models.server_decoding``)."""
        if "Search " in self._open or "Find in page: " in self._open:
            return None
        found = [c for c in self._fixed if c in self._complete and self.complete(c)]
        if "Quote: " in self._open:
            if self._starts is None or self._ends is None or not self._exact:
                return None
            room = max(1, min(MAX_QUOTE_CHOICES, (limit - len(found)) // max(1, len(self._starts))))
            for at, least in sorted(self._starts.items()):
                kept = 0
                for end in sorted(e for e in self._ends if e >= max(least, at + 1)):
                    command = "Quote: " + self._page[at:end]
                    if command not in found and self.complete(command):
                        found.append(command)
                        kept += 1
                        if kept == room:
                            break
        return tuple(found) if 0 < len(found) <= max(limit, len(self._starts or ())) else None

    def forced(self, text: str) -> str:
        """The text every valid command growing from ``text`` goes on with next.

        Empty where ``text`` may end here or the commands part at once. Used by the
        decoder to feed such text in one step instead of a token at a time: with
        ``kinds={"Click"}`` it is "Clicked on link "; with one ``quote_starts`` entry
        and ``exact`` quotes, the whole passage through its least end.
        """
        if not self.allows(text) or self.complete(text):
            return ""
        keyword = next((k for k in self._open if text.startswith(k)), None)
        if keyword is not None:
            return self._forced_quote(text[len(keyword) :]) if keyword == "Quote: " else ""
        rests = [c[len(text) :] for c in self._fixed if c.startswith(text) and c != text]
        head = os.path.commonprefix(rests) if rests else ""
        if head and text + head in self._open:  # the keyword itself, then maybe its argument
            head += self.forced(text + head)
        return head if self.allows(text + head) else ""

    def _forced_quote(self, arg: str) -> str:
        if self._starts is None or not self._exact:
            return ""  # a free quote (or one folded to lower case) is the model's to write
        needle = self._fold(arg)
        rests = []
        for at, least in self._starts.items():
            if self._page.startswith(needle, at):
                here = at + len(needle)
                if here >= least and self._ends is not None:  # on to the next place to end
                    least = min((e for e in self._ends if e > here), default=here)
                rests.append(self._page[here:least])
        head = os.path.commonprefix(rests) if rests else ""
        return head if head and self._quote_ok(arg + head, whole=False) else ""
