"""The browsing environment: ``reset(question)``, then ``step(command)`` until done.

Whatever drives it (a model's free commands or the guided grammar), an episode cannot
loop or run on: an exact repeat of a command already taken where it would do the same
thing is refused as invalid (a search made before; a link followed or a quote taken from
this page; a find, scroll, Top or Back from this very view), ``MAX_INVALID_IN_A_ROW``
invalid commands in a row end the episode, and so does a ``deadline`` passed.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from webqa.browser.commands import (
    ActionRecord,
    Back,
    ClickLink,
    Command,
    CommandConstraint,
    End,
    FindInPage,
    InvalidCommandError,
    QuoteText,
    Scroll,
    Search,
    Top,
    format_command,
    parse_command,
)
from webqa.browser.page import (
    Page,
    clean_text,
    is_search_page,
    match_quote,
    normalize,
    one_line,
    page_from_document,
    plain_line,
    quote_needle,
    search_results_page,
)
from webqa.browser.render import render_observation
from webqa.errors import FetchError, InputError, SearchError, WebQAError
from webqa.values import EndReason, Quote
from webqa.web.base import Web

# Invalid commands in a row that end an episode (end reason "invalid_actions"): a model
# that keeps failing to give a command the browser can carry out has stopped browsing.
MAX_INVALID_IN_A_ROW = 3
ALREADY_SEARCHED = "already searched for this"
ALREADY_DONE = "already done on this page"


class EpisodeOverError(WebQAError):
    """``step`` was called before ``reset`` or after the episode ended."""


class _Rejected(Exception):
    """A command that parsed but could not be carried out; the message says why."""


@dataclass(frozen=True)
class Observation:
    """What the model sees before its next command, and the state behind it."""

    text: str  # the rendered observation
    question: str
    page: Page | None  # None before any page is open
    scroll: int  # index of the first visible line
    quotes: tuple[Quote, ...]
    actions_left: int
    can_go_back: bool = False
    # commands that would only repeat what was done (refused if given): searches made,
    # links followed and quotes taken from this page, and what was done from this view
    repeats: frozenset[str] = frozenset()

    window_lines: int = 20
    pages_opened: int = 0  # pages opened from the web so far (not results), this one too

    def constraint(self) -> CommandConstraint:
        """Constrained decoding of a command valid here, for any policy (build once per
        step): links that exist, quotes that are on the page, Back where there is a
        page to go back to, End: Answer once something is quoted, and none of the
        ``repeats`` the browser would refuse. A procedure may narrow it further
        (``webqa.procedure``)."""
        page = self.page
        quotable = page is not None and not is_search_page(page)
        return CommandConstraint(
            [link.id for link in page.links] if page is not None else [],
            page.plain if page is not None and quotable else "",
            page_open=page is not None,
            can_go_back=self.can_go_back,
            can_answer=bool(self.quotes),
            exclude=self.repeats,
        )


@dataclass(frozen=True)
class StepResult:
    """The outcome of one command, Gymnasium-style.

    ``info`` holds ``command`` (as shown), ``valid``, ``message``, ``error`` (the reason,
    only when invalid) and ``end_reason`` (once the episode is over).
    """

    observation: Observation
    terminated: bool  # an End command was accepted
    # a limit ended it: the actions ran out, the quotes passed their length limit, too
    # many invalid commands in a row, or the deadline passed
    truncated: bool
    info: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class _View:
    page: Page
    top: int = 0
    find_line: int | None = None  # line of the last Find match, where the next one starts


class BrowserEnv:
    """WebGPT's text browser over a ``Web``; every command costs one action.

    ``deadline`` (a ``time.monotonic()`` value, or None) is when the episode's time is
    up: the step that finds it passed is carried out and ends the episode ("time_budget").
    It may be set after construction, and stays across ``reset``.
    """

    def __init__(
        self,
        web: Web,
        *,
        max_actions: int = 100,
        max_quote_chars: int = 4000,
        window_lines: int = 20,
        results_lines: int | None = None,
        max_results: int = 10,
        page_first: bool = False,
        opens_at: Callable[[Page], str | None] | None = None,
        deadline: float | None = None,
        max_invalid_in_a_row: int = MAX_INVALID_IN_A_ROW,
    ) -> None:
        # a results page's window (the guided procedure shows fewer results than lines
        # of a page: its model opens the first result almost always)
        results_lines = window_lines if results_lines is None else results_lines
        limits = dict(
            max_actions=max_actions,
            max_quote_chars=max_quote_chars,
            window_lines=window_lines,
            results_lines=results_lines,
            max_results=max_results,
            max_invalid_in_a_row=max_invalid_in_a_row,
        )
        for name, value in limits.items():
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        self.web = web
        self.max_actions = max_actions
        self.max_quote_chars = max_quote_chars
        self.window_lines = window_lines
        self.results_lines = results_lines
        self.max_results = max_results
        self.max_invalid_in_a_row = max_invalid_in_a_row
        self.page_first = page_first  # the observation's layout (see render_observation)
        # where a page opened by a link shows first: the window starts a line above the
        # text it names (None, or text not on the page: at the top)
        self.opens_at = opens_at
        self.deadline = deadline
        self._question: str | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._view: _View | None = None
        self._history: list[_View] = []
        self._quotes: list[Quote] = []
        self._actions: list[ActionRecord] = []
        self._pages: list[Page] = []
        self._end: EndReason | None = None
        # (where, command) of every valid command that a repeat of would be refused:
        # where is "*" for a search, the page's URL for a click or quote, (URL, first
        # line shown) for the rest (see _where)
        self._moves: set[tuple[object, str]] = set()

    # ------------------------------------------------------------------ contract

    def reset(self, question: str) -> Observation:
        """Start an episode on ``question`` with a blank browser.

        The question is cleaned first (``clean_text``: terminal escapes, control and
        invisible characters removed), as page text is: the model reads what a person
        sees.
        """
        question = clean_text(question).strip()
        if not question:
            raise InputError("the question is empty")
        self._question = question
        self._reset_state()
        return self.observation

    def step(self, command_text: str) -> StepResult:
        """Carry out one command (valid or not, it costs one action); an exact repeat of
        one already taken here is refused (see ``Observation.repeats``)."""
        if self._question is None:
            raise EpisodeOverError("call reset(question) before step()")
        if self._end is not None:
            raise EpisodeOverError(f"the episode is over ({self._end}); call reset()")
        shown = one_line(command_text)
        try:
            command = parse_command(command_text)
            shown = format_command(command)
            where = self._where(command)
            if (where, shown) in self._moves:
                raise _Rejected(ALREADY_SEARCHED if where == "*" else ALREADY_DONE)
            record = ActionRecord(shown, True, self._apply(command))
            if where is not None:
                self._moves.add((where, shown))
        except (InvalidCommandError, _Rejected) as e:
            record = ActionRecord(shown, False, str(e))
        self._actions.append(record)
        terminated = self._end is not None
        if not terminated:
            if sum(len(q.text) for q in self._quotes) > self.max_quote_chars:
                self._end = "quote_limit"
            elif self.actions_left == 0:
                self._end = "actions"
            elif self._invalid_in_a_row() >= self.max_invalid_in_a_row:
                self._end = "invalid_actions"
            elif self.deadline is not None and time.monotonic() >= self.deadline:
                self._end = "time_budget"
        info: dict[str, object] = {
            "command": shown,
            "valid": record.valid,
            "message": record.message,
        }
        if not record.valid:
            info["error"] = record.message
        if self._end is not None:
            info["end_reason"] = self._end
        return StepResult(
            self.observation, terminated, self._end is not None and not terminated, info
        )

    # ------------------------------------------------------------------ results

    @property
    def observation(self) -> Observation:
        """The current observation."""
        if self._question is None:
            raise EpisodeOverError("call reset(question) first")
        view = self._view
        page, top = (view.page, view.top) if view is not None else (None, 0)
        text = render_observation(
            question=self._question,
            quotes=self._quotes,
            actions=self._actions,
            page=page,
            top=top,
            window_lines=self._window(page),
            actions_left=self.actions_left,
            page_first=self.page_first,
        )
        return Observation(
            text,
            self._question,
            page,
            top,
            tuple(self._quotes),
            self.actions_left,
            can_go_back=bool(self._history),
            repeats=frozenset(c for where, c in self._moves if where in self._here()),
            window_lines=self._window(page),
            pages_opened=len(self._pages),
        )

    @property
    def actions_left(self) -> int:
        """Actions left in this episode."""
        return self.max_actions - len(self._actions)

    @property
    def done(self) -> bool:
        """Whether the episode is over."""
        return self._end is not None

    @property
    def end_reason(self) -> EndReason | None:
        """answer | nonsense | controversial | actions | quote_limit | invalid_actions |
        time_budget, or None while browsing."""
        return self._end

    @property
    def trajectory(self) -> tuple[ActionRecord, ...]:
        """Every command so far as (text, valid, message)."""
        return tuple(self._actions)

    @property
    def quotes(self) -> tuple[Quote, ...]:
        """The quotes recorded so far."""
        return tuple(self._quotes)

    @property
    def pages_fetched(self) -> tuple[Page, ...]:
        """Every page opened from the web (not search results), in order."""
        return tuple(self._pages)

    @property
    def visited_urls(self) -> tuple[str, ...]:
        """The URLs of ``pages_fetched``."""
        return tuple(page.url for page in self._pages)

    # ------------------------------------------------------------------ repeats

    def _where(self, command: Command) -> object:
        """Where ``command`` would repeat itself (see ``_moves``); None for a command
        that is never a repeat (End, or one with no page open, which is refused)."""
        view = self._view
        if isinstance(command, Search):
            return "*"
        if view is None or isinstance(command, End):
            return None
        if isinstance(command, ClickLink | QuoteText):
            return view.page.url
        return (view.page.url, view.top)

    def _here(self) -> tuple[object, ...]:
        """The places whose moves would repeat here (see ``_where``)."""
        view = self._view
        if view is None:
            return ("*",)
        return ("*", view.page.url, (view.page.url, view.top))

    def _invalid_in_a_row(self) -> int:
        count = 0
        for action in reversed(self._actions):
            if action.valid:
                break
            count += 1
        return count

    # ------------------------------------------------------------------ commands

    def _apply(self, command: Command) -> str:
        """Carry out ``command``; returns a note, raises _Rejected when it cannot."""
        match command:
            case Search(query):
                return self._search(query)
            case ClickLink(link_id):
                return self._click(link_id)
            case FindInPage(text):
                return self._find(text)
            case QuoteText(start, end):
                return self._quote(start, end)
            case Scroll(windows):
                return self._scroll(windows)
            case Top():
                self._view = replace(self._current(), top=0, find_line=None)
            case Back():
                if not self._history:
                    raise _Rejected("there is no previous page")
                self._view = self._history.pop()
            case End(reason):
                if reason == "answer" and not self._quotes:
                    raise _Rejected("End: Answer needs at least one quote")
                self._end = reason
        return ""

    def _current(self) -> _View:
        if self._view is None:
            raise _Rejected("no page is open yet; Search first")
        return self._view

    def _open(self, page: Page) -> None:
        if self._view is not None:
            self._history.append(self._view)
        self._view = _View(page)

    def _search(self, query: str) -> str:
        try:
            results = self.web.search(query, self.max_results)[: self.max_results]
        except SearchError as e:
            raise _Rejected(f"search failed: {e}") from e
        self._open(search_results_page(query, results, domain=self.web.name))
        return ""

    def _click(self, link_id: int) -> str:
        links = self._current().page.links
        if not links:
            raise _Rejected("this page has no links")
        if link_id >= len(links):
            raise _Rejected(f"there is no link {link_id}; links are 0-{len(links) - 1}")
        url = links[link_id].url
        try:
            page = page_from_document(self.web.fetch(url))
        except FetchError as e:
            raise _Rejected(f"could not open link {link_id}: {e}") from e
        self._pages.append(page)
        self._open(page)
        focus = self.opens_at(page) if self.opens_at is not None else None
        hits = _lines_with(page, quote_needle(focus)) if focus else []
        if hits:
            self._view = _View(page, top=min(max(0, hits[0] - 1), self._max_top(page)))
        return ""

    def _find(self, text: str) -> str:
        view = self._current()
        hits = _lines_with(view.page, quote_needle(text))
        if not hits:
            return "not found"
        cursor = view.find_line if view.find_line is not None else view.top - 1
        line = next((h for h in hits if h > cursor), hits[0])
        self._view = replace(view, top=min(line, self._max_top(view.page)), find_line=line)
        return ""

    def _quote(self, start: str, end: str | None) -> str:
        page = self._current().page
        if is_search_page(page):
            raise _Rejected("search results cannot be quoted; open a result first")
        span = match_quote(page.plain, start, end)
        if span is None:
            if end is not None and match_quote(page.plain, start) is not None:
                raise _Rejected("the quote's end is not on this page after its start")
            raise _Rejected("the quote is not on this page")
        quote = Quote(page.title, page.url, page.domain, span)
        if quote in self._quotes:
            raise _Rejected("this text is already quoted")
        self._quotes.append(quote)
        return ""

    def _scroll(self, windows: int) -> str:
        view = self._current()
        top = view.top + windows * self._window(view.page)
        top = max(0, min(top, self._max_top(view.page)))
        self._view = replace(view, top=top, find_line=None)
        if top == view.top:
            return "already at the bottom" if windows > 0 else "already at the top"
        return ""

    def _max_top(self, page: Page) -> int:
        return max(0, len(page.lines) - self._window(page))

    def _window(self, page: Page | None) -> int:
        """How many lines of ``page`` a view shows."""
        results = page is not None and is_search_page(page)
        return self.results_lines if results else self.window_lines


def _lines_with(page: Page, needle: str) -> list[int]:
    """The displayed lines of ``page`` where ``needle`` (normalised) starts."""
    starts: list[int] = []
    parts: list[str] = []
    offset = 0
    for text_line in page.lines:
        starts.append(offset)
        parts.append(normalize(plain_line(text_line)))
        offset += len(parts[-1]) + 1
    joined = " ".join(parts)
    hits: list[int] = []
    at = joined.find(needle) if needle else -1
    while at >= 0:
        hits.append(bisect_right(starts, at) - 1)
        at = joined.find(needle, at + 1)
    return hits
