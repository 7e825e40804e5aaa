"""How a policy browses, as one object passed in: a procedure.

A procedure says what the browser cannot: which command a policy starts with, the
grammar it decodes each command under, where a page it opens shows first, which
passages a quote may start with, whether a weak answer is written again, and the
prompt that teaches all of it. The browser itself knows only which commands are valid
on a page (``Observation.constraint``), the same for every policy.

Two procedures:

- ``Free``: WebGPT's, for models that choose every command (a model behind a server).
  The plain command set, checked against the page (a served model's reply that is not
  a valid command is asked again), the WebGPT prompt (``browse_system``), a 20-line
  window, no redraft.
- ``Guided``: for small local models that cannot follow the command set on their own.
  The question is the first query; from results, a result not yet opened is opened;
  a page opens at its passage most relevant to the question (the ``ranker``'s choice)
  and a quote must start at one of its best passages (``webqa.shortlist``); the page
  is quoted before the browser leaves it, and once quoted, quoted more or answered
  (``explore``). A 12-line window shown before the quotes and past actions, the
  guided prompt (``browse_guided_system``), and a redraft of an answer that cites
  without saying anything (``webqa.redraft``). Nothing is decided for the model where
  there is a choice: it picks the result, the passage, where the quote ends and when
  to stop.

Before, three flags (``constrain``, ``guided``, whether a ranker was given) made four
modes: guided with a ranker (every local model from ``answer()`` and ``webqa``: now
``Guided``), plain grammar (served models: now ``Free``), guided without a ranker (only
by calling ``run_question`` directly; its prompt offered Top, Scrolled up and End:
Nonsense, which its grammar never admitted) and no grammar at all (``constrain=False``,
never set by a front door). The last two are gone.

``start(question)`` gives the procedure's ``Course`` for one question: what it knows
about that question's pages (the shortlist, ranked once per page) is shared by the
question's episodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Protocol

from webqa import prompting
from webqa.answering import answer_chat, format_quotes, states_answer
from webqa.browser.commands import MAX_TEXT_CHARS, CommandConstraint
from webqa.browser.env import Observation
from webqa.browser.page import Page, is_search_page, normalize, plain_line
from webqa.errors import InputError
from webqa.models.base import Chat, Message
from webqa.shortlist import PassageRanker, Passages, Shortlister
from webqa.text import STOP_WORDS, descriptors, meets, names, relation, said_by, unnamed
from webqa.values import BROWSING, Quote

# Greedy episodes quote from the best passage; sampled ones choose among the best
# SAMPLED_SHORTLIST, so that best-of-n has different quotes to choose between.
SAMPLED_SHORTLIST = 3
# A follow-up search is at most this many words, each from the question or the quotes.
FOLLOW_UP_WORDS = 6
# Actions a follow-up needs: search, open a result, quote, answer.
FOLLOW_UP_ACTIONS = 4
_WORD = re.compile(r"\w+")


class Course(Protocol):
    """A procedure applied to one question, for each of its episodes."""

    @property
    def prompt(self) -> str:
        """The browsing prompt's template (prompts/<prompt>.txt)."""
        ...

    @property
    def window_lines(self) -> int:
        """Lines of page text an observation shows."""
        ...

    @property
    def results_lines(self) -> int:
        """Lines of a results page an observation shows."""
        ...

    @property
    def page_first(self) -> bool:
        """Whether observations show the page before the quotes and past actions."""
        ...

    @property
    def redraft(self) -> bool:
        """Whether answers that add nothing from their quotes are written again."""
        ...

    @property
    def read_span(self) -> bool:
        """Whether the quotes' words that answer the question are copied out
        (``webqa.reading``) and an answer is written again to say them: a redraft, and
        at the end an answer that does not (``webqa.redraft.reread``)."""
        ...

    def opening(self, observation: Observation) -> str | None:
        """The command an episode starts with, on its blank browser (None: the model's)."""
        ...

    def opens_at(self, page: Page) -> str | None:
        """The text a just-opened page shows near the top of its window (None: the top)."""
        ...

    def grammar(
        self, observation: Observation, temperature: float, episode: int = 0
    ) -> CommandConstraint:
        """What the next command may be, for episode number ``episode`` of the question
        browsing at ``temperature``."""
        ...

    def prompt_at(self, observation: Observation) -> str:
        """The browsing prompt's template for the step at ``observation``."""
        ...

    @property
    def judge_by(self) -> str:
        """How ``judge``'s chat is answered: "yes" (the policy's P(yes) of a yes/no
        question) or "draft" (the answer the policy writes from the quotes, the very
        request the end would make: ``webqa.episode.answer_request``)."""
        ...

    def judge(self, observation: Observation) -> Chat | None:
        """The chat asking the policy whether the quotes so far state the answer, where
        the next step depends on it and it is not known yet (None: nothing to ask)."""
        ...

    def judged(self, observation: Observation, reply: float | str) -> None:
        """Keep the policy's reply to ``judge(observation)``'s chat: P(yes), or the
        drafted answer (``judge_by``)."""
        ...


class Procedure(Protocol):
    """How a policy browses (see the module's docstring)."""

    @property
    def name(self) -> str: ...

    def start(self, question: str) -> Course:
        """This procedure for ``question``'s episodes."""
        ...


@dataclass(frozen=True)
class Free:
    """WebGPT's procedure: the plain command set; the model chooses every command."""

    window_lines: int = 20  # WebGPT's window
    results_lines: int = 20

    name: ClassVar[str] = "free"
    prompt: ClassVar[str] = "browse_system"
    page_first: ClassVar[bool] = False
    redraft: ClassVar[bool] = False
    read_span: ClassVar[bool] = False

    def start(self, question: str) -> Free:
        return self  # nothing to keep per question

    def opening(self, observation: Observation) -> str | None:
        return None

    def opens_at(self, page: Page) -> str | None:
        return None

    def grammar(
        self, observation: Observation, temperature: float, episode: int = 0
    ) -> CommandConstraint:
        return observation.constraint()

    def prompt_at(self, observation: Observation) -> str:
        return self.prompt

    judge_by: ClassVar[str] = "yes"

    def judge(self, observation: Observation) -> Chat | None:
        return None  # a served model decides for itself when to search again

    def judged(self, observation: Observation, reply: float | str) -> None:
        return None


@dataclass(frozen=True)
class Guided:
    """The guided procedure for small local models (see the module's docstring)."""

    ranker: PassageRanker  # scores a page's passages against the question
    shortlist: int = SAMPLED_SHORTLIST  # a sampled episode's choice of passages
    min_passage_chars: int = 20  # shorter sentences are not offered as quote starts
    # Once a page gave a quote, may the episode leave it (follow a link, go back, search
    # again)? Off, it quotes more of the page or ends. On the 40 dev questions the 0.5B,
    # free to leave, followed link 0 in 35 and ended on the next page without quoting
    # it, every time: off gave the same 40 answers 27% faster.
    explore: bool = False
    # every step re-sends its window and a CPU prefills ~100 tokens a second, and the
    # page opens at the passage to quote (a line above it): a shorter window than
    # WebGPT's, which holds a Factbook field quoted whole (400 characters at most)
    window_lines: int = 8
    # a results page shows its first two or three results: the 0.5B opened the first in
    # 171 of 173 questions, and the 12 lines of results were its longest prompt
    results_lines: int = 6
    redraft: bool = True
    # The words of the quotes that answer the question are copied out
    # (``webqa.reading.answer_spans``): a redraft may cite only once it has said them,
    # and at the end an answer that does not say them is written again so
    # (``webqa.redraft.reread``; kept only where grounded and backed by its quotes).
    read_span: bool = True
    # Once a page gave a quote, the policy is asked whether the quotes so far state the
    # answer; if not, the episode searches once more with a query the model writes from
    # the question's and the quotes' words (``follow_up_grammar``): the second hop of a
    # question whose answer is on the page of something the first page names. On the
    # generated dev split (173 questions, qwen-0.5b int8, n=1) it took two-hop questions
    # from 3 of 38 to 6 and the whole split from 98 to 100 (with years as names), and
    # answerable questions declined from 15.8% to 13.7%, at 4.8 s a question against 3.7.
    follow_up: bool = True
    # How the policy is asked. "draft": it writes the answer from the quotes so far, as
    # it would at the end, and they answer where that draft would be shown as an answer
    # (``webqa.answering.states_answer``: it does not decline and adds something the
    # quotes say); the draft is kept, and is the answer if the episode ends there.
    # "yes": its P(yes) that the quotes state the answer, under ``judge_threshold``:
    # they do not. The 0.5B's P(yes) sits in 0.3-0.5 whatever the quotes; on 23 dev
    # questions' first quotes, those holding the answer scored 0.39-0.51, the rest 0.31-0.49.
    judge_by: str = "draft"
    judge_threshold: float = 0.4
    # With "draft", the quotes must also say a word of what the question asks of what
    # it names (``text.relation``: "die" or "year" of "In what year did the author of
    # Les Misérables die?"); quotes that only name it ("1862 novel by Victor Hugo")
    # are searched past, though a draft from them ("died in 1862") cites what they say.
    relation_judge: bool = True
    # A page opened before anything was quoted that never names what the question names
    # (``text.unnamed`` over its title and text: "Mount Olympus" for "Which is the
    # highest peak of Cameroon?") is left for the results (its only command is Back), for
    # at most this many pages; the next page opened is read whatever it names.
    pass_over: int = 2
    # best-of-n spreads its sampled episodes over the results: half of them (episodes 2
    # and 3 of every 4) do not open the first result first. The 0.5B opened the first
    # result in 171 of 173 questions, sampled or not, so without this every candidate
    # read the same page; the page holding the answer was the second or third result for
    # 13 of 139 generated dev questions (the first for 126). Skipping the first i // 2
    # results instead sent 6 of 8 episodes off the first result, where more samples of
    # it would have found answers the greedy one missed.
    spread: bool = True

    name: ClassVar[str] = "guided"

    def __post_init__(self) -> None:
        if self.pass_over < 0:
            raise InputError(f"Guided: pass_over must be at least 0, got {self.pass_over}")
        for field, value in (
            ("shortlist", self.shortlist),
            ("window_lines", self.window_lines),
            ("results_lines", self.results_lines),
        ):
            if value < 1:
                raise InputError(f"Guided: {field} must be at least 1, got {value}")
        if self.judge_by not in JUDGES:
            raise InputError(
                f"Guided: judge_by must be one of {', '.join(JUDGES)}, got {self.judge_by!r}"
            )
        if not 0.0 <= self.judge_threshold <= 1.0:
            raise InputError(
                f"Guided: judge_threshold must be in [0, 1], got {self.judge_threshold}"
            )

    def start(self, question: str) -> GuidedCourse:
        return GuidedCourse(self, question)


class GuidedCourse:
    """``Guided`` for one question: its shortlist of each page's passages."""

    prompt = "browse_guided_system"
    page_first = True

    def __init__(self, procedure: Guided, question: str) -> None:
        self.procedure = procedure
        self.window_lines = procedure.window_lines
        self.results_lines = procedure.results_lines
        self.redraft = procedure.redraft
        self.read_span = procedure.read_span
        self.shortlister = Shortlister(
            question, procedure.ranker, min_chars=procedure.min_passage_chars
        )
        # the quotes so far (their texts) -> whether the policy judged they state the answer
        self._answered: dict[tuple[str, ...], bool] = {}
        # a page a follow-up search found is ranked against that query and the question
        # less the names it gives (``follow_up_focus``): its URL -> that shortlister
        self._found_by: dict[str, Shortlister] = {}
        self._follow_ups: dict[str, Shortlister] = {}
        # a page's URL -> whether it names every name of the question
        self._names: dict[str, bool] = {}
        self._results = 0  # results the question's search found (a page is left for one)

    def _shortlister(self, page: Page | None) -> Shortlister:
        found = self._found_by.get(page.url) if page is not None else None
        return found or self.shortlister

    def _note_follow_up(self, observation: Observation) -> None:
        """On the results of a follow-up search, remember which query found each result."""
        page = observation.page
        if page is None or not is_search_page(page) or searches(observation) < 2:
            return
        first = first_search(observation.question)
        query = next(
            (r for r in sorted(observation.repeats) if r.startswith("Search ") and r != first), None
        )
        if query is None:
            return
        text = follow_up_focus(query.removeprefix("Search "), observation.question)
        shortlister = self._follow_ups.get(text)
        if shortlister is None:
            shortlister = self._follow_ups[text] = Shortlister(
                text, self.procedure.ranker, min_chars=self.procedure.min_passage_chars
            )
        for link in page.links:
            self._found_by.setdefault(link.url, shortlister)

    def opening(self, observation: Observation) -> str | None:
        return first_search(observation.question)

    def opens_at(self, page: Page) -> str | None:
        passages = self._shortlister(page)(page)
        return None if passages is None else passages.focus

    def grammar(
        self, observation: Observation, temperature: float, episode: int = 0
    ) -> CommandConstraint:
        if self._follows_up(observation):
            return follow_up_grammar(observation)
        self._note_follow_up(observation)
        k = 1 if temperature == 0 else self.procedure.shortlist
        passages = self._shortlister(observation.page)(observation.page, k)
        skip = 0
        if observation.page is not None and is_search_page(observation.page):
            self._results = max(self._results, len(observation.page.links))
            if temperature > 0 and self.procedure.spread and observation.pages_opened == 0:
                skip = 1 if episode % 4 >= 2 else 0
        leave = self._passes_over(observation)
        return guided_grammar(
            observation, passages, explore=self.procedure.explore, leave=leave, skip=skip
        )

    def _passes_over(self, observation: Observation) -> bool:
        """Whether the page is left unread: nothing is quoted yet, it is one of the first
        ``pass_over`` pages opened, a result is left to open instead, and it never names
        a name the question gives."""
        page = observation.page
        if (
            page is None
            or is_search_page(page)
            or observation.quotes
            or not observation.can_go_back
            or observation.pages_opened > min(self.procedure.pass_over, self._results - 1)
        ):
            return False
        names = self._names.get(page.url)
        if names is None:
            whole = Quote(page.title, page.url, page.domain, page.plain)
            names = self._names[page.url] = not unnamed(observation.question, [whole])
        return not names

    def prompt_at(self, observation: Observation) -> str:
        return FOLLOW_UP_PROMPT if self._follows_up(observation) else self.prompt

    @property
    def judge_by(self) -> str:
        return self.procedure.judge_by

    def judge(self, observation: Observation) -> Chat | None:
        if not self._may_follow_up(observation) or quotes_key(observation.quotes) in self._answered:
            return None
        if self.judge_by == "draft":
            return answer_chat(observation.question, observation.quotes)
        return judge_chat(observation.question, observation.quotes)

    def judged(self, observation: Observation, reply: float | str) -> None:
        if isinstance(reply, str):
            question, quotes = observation.question, observation.quotes
            answered = states_answer(question, reply, quotes) and (
                not self.procedure.relation_judge
                or bool(meets(relation(question), said_by(quotes)))
            )
        else:
            answered = reply >= self.procedure.judge_threshold
        self._answered[quotes_key(observation.quotes)] = answered

    def _may_follow_up(self, observation: Observation) -> bool:
        """On a page that gave a quote, with no follow-up search made yet and the actions
        one needs left."""
        page = observation.page
        return (
            self.procedure.follow_up
            and page is not None
            and not is_search_page(page)
            and any(q.url == page.url for q in observation.quotes)
            and searches(observation) < 2
            and observation.actions_left >= FOLLOW_UP_ACTIONS
        )

    def _follows_up(self, observation: Observation) -> bool:
        """Whether the next command is the follow-up search: the quotes were judged not to
        state the answer."""
        return (
            self._may_follow_up(observation)
            and self._answered.get(quotes_key(observation.quotes)) is False
        )


# a model behind a server whose name gives at most this many parameters browses guided
SMALL_SERVED_PARAMS = 4e9
_SIZE_IN_NAME = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z0-9])", re.IGNORECASE)


def size_in_name(name: str) -> float | None:
    """The parameter count a model's name gives ("Qwen2.5-0.5B-Instruct": 0.5e9,
    "qwen2.5:7b": 7e9, "SmolLM2-135M": 135e6), or None where it gives none."""
    match = _SIZE_IN_NAME.search(name)
    if match is None:
        return None
    return float(match[1]) * (1e9 if match[2].lower() == "b" else 1e6)


def guided_browsing(browsing: str, served: bool, model_name: str | None) -> bool:
    """Whether a model browses guided: ``browsing`` "guided" or "free" says; "auto"
    guides a local model, and a served one whose name gives at most
    ``SMALL_SERVED_PARAMS`` parameters (a model of unknown size behind a server keeps
    WebGPT's free command set)."""
    if browsing not in BROWSING:
        raise InputError(f"unknown browsing {browsing!r} (known: {', '.join(BROWSING)})")
    if browsing != "auto":
        return browsing == "guided"
    if not served:
        return True
    size = size_in_name(model_name or "")
    return size is not None and size <= SMALL_SERVED_PARAMS


JUDGE_PROMPT = "browse_judge"
JUDGES = ("draft", "yes")  # how a follow-up's judge is asked (``Guided.judge_by``)
FOLLOW_UP_PROMPT = "browse_guided_followup"


def quotes_key(quotes: tuple[Quote, ...]) -> tuple[str, ...]:
    """What identifies a set of quotes (their texts, in order)."""
    return tuple(q.text for q in quotes)


def searches(observation: Observation) -> int:
    """How many searches the episode has made."""
    return sum(r.startswith("Search ") for r in observation.repeats)


def judge_chat(question: str, quotes: tuple[Quote, ...]) -> Chat:
    """The chat asking whether ``quotes`` state the answer to ``question``."""
    text = prompting.render(JUDGE_PROMPT, question=question, quotes=format_quotes(quotes))
    return [Message("user", text)]


def follow_up_grammar(observation: Observation) -> CommandConstraint:
    """The follow-up search: at most ``FOLLOW_UP_WORDS`` different words, none a stop
    word ("When was the ..." copies the question), each a word of the question or of
    the quotes, or one that names the same thing ("India" from "Indian":
    ``CommandConstraint``), other than the question's ``subject_words`` (searched for
    already: "Czech military commander" found Czechia's armed forces, not its highest
    point), one of them a word of the quotes that the question lacks, not a search made
    before; a word named the same as a given one is one the page or the quotes use."""
    left_out = STOP_WORDS | {w.casefold() for w in subject_words(observation.question)}
    question_words = _WORD.findall(observation.question)
    asked = [w for w in question_words if w.casefold() not in left_out]
    quoted = [
        w
        for w in _WORD.findall(" ".join(q.text for q in observation.quotes))
        if w.casefold() not in left_out
    ]
    # the query names something the quotes found that the question did not name
    known = {w.casefold() for w in question_words} | STOP_WORDS
    found = [w for w in quoted if w.casefold() not in known and not w.isdigit()]
    # a word named the same as a given one ("Belgium" for "Belgian") is one the page or
    # the quotes use: a decoder left to derive words wrote "attenM", "NavaZo", "Margaresh"
    read = " ".join(
        [observation.page.plain if observation.page is not None else ""]
        + [f"{q.title} {q.text}" for q in observation.quotes]
    )
    return CommandConstraint(
        [],
        "",
        page_open=False,
        can_go_back=False,
        can_answer=False,
        exclude=observation.repeats,
        kinds={"Search"},
        search_words=asked + quoted,
        max_search_words=FOLLOW_UP_WORDS,
        search_needs=found,
        search_kin=_WORD.findall(read),
        exact=True,
    )


def subject_words(question: str) -> set[str]:
    """The words of the names ``question`` gives (``names``) and of what it says they
    are (``descriptors``: "actress" of "the actress Ingrid Bergman"), as written: the
    first page's subject, searched for already."""
    return set(names(question)) | set(descriptors(question))


def follow_up_focus(query: str, question: str) -> str:
    """What the passages of a page a follow-up ``query`` found are ranked against: the
    query, then the question without its ``subject_words``. They were the first
    page's subject, and on the second page they pull the wrong passage: for "Which
    currency is used in the country that Antwerp is in?" Belgium's page ranked its
    list of cities (which names Antwerp, a rare word there) over its currency, and for
    "... the home country of the military commander Jan Žižka?" Czechia's page gave
    its armed forces."""
    given = subject_words(question)
    rest = " ".join(w for w in question.split() if not set(_WORD.findall(w)) & given)
    return f"{query}. {rest}"


def first_search(question: str) -> str:
    """Guided browsing's first command: the question itself as the query."""
    return "Search " + " ".join(question.split())[:MAX_TEXT_CHARS].rstrip()


def guided_grammar(
    observation: Observation,
    passages: Passages | None = None,
    *,
    explore: bool = False,
    leave: bool = False,
    skip: int = 0,
) -> CommandConstraint:
    """The guided procedure's grammar at ``observation``.

    Search first; from results, open a result not yet opened (search again only after
    one was opened); on a page, quote, and follow links, search again or answer only
    once the page gave a quote. With ``passages`` (the page's shortlist), a quote
    starts at one of its ``starts`` and runs at least through its passage, from
    anywhere on the page, and ends where one of its ``ends`` does; Find and scrolling
    are not offered, and the page is quoted before the browser leaves it (a small
    model otherwise backs out of pages that hold the answer). Without (a page with
    nothing to rank), it quotes from the visible text, finds, scrolls or goes back.
    ``explore`` (with ``passages``): once the page gave a quote, the browser may leave
    it; without it, the next command quotes more of the page or ends. ``leave``: the
    page is not the one the question asks about, and the only command is Back.
    ``skip``: on results, the first ``skip`` results are not opened (the last one to
    open never is skipped).
    """
    page = observation.page
    quotable = page is not None and not is_search_page(page)
    links = [link.id for link in page.links] if page is not None else []
    quotes = observation.quotes
    exclude = set(observation.repeats)
    searched = quoted = False
    if page is None:
        kinds = {"Search"}
    elif not quotable:
        # a result already quoted (the first page, found again by a follow-up) is not
        # opened again
        quoted_urls = {q.url for q in quotes}
        exclude |= {f"Clicked on link {link.id}" for link in page.links if link.url in quoted_urls}
        fresh = [i for i in links if f"Clicked on link {i}" not in exclude]
        for i in fresh[: min(skip, len(fresh) - 1)]:
            exclude.add(f"Clicked on link {i}")
        # nothing left to open: with quotes the episode ends (a search written freely
        # here, after the follow-up found nothing new, looped "X (webqa) (webqa)" to
        # the end of its actions), without them it searches again
        kinds = {"Click"} if fresh else (set() if quotes else {"Search"})
        searched = bool(fresh)  # results to open: a search is not left unread
    else:
        quoted = any(q.url == page.url for q in quotes)
        if leave:
            kinds = {"Back"}
        elif passages is None:
            kinds = {"Quote", "Find", "Scroll", "Back"}
        else:  # the page opened at its best passage: quote it before leaving
            kinds = {"Quote", "Back"} if quoted and explore else {"Quote"}
        if quoted and (explore or passages is None) and not leave:
            kinds |= {"Click", "Search"}
    # a page is read before answering: results opened, a page quoted (the second page of
    # a follow-up search)
    unread = searched or (quotable and passages is not None and not quoted)
    if quotes and not unread:
        kinds.add("End: Answer")
    starts = ends = None
    if page is None or not quotable:
        text = ""
    elif passages is not None:
        text = page.plain
        flat = normalize(text)
        starts = {}
        done = [normalize(q.text) for q in quotes if q.url == page.url]
        for begin, through in passages.starts:
            span = _tightest(flat, normalize(begin).strip(), normalize(through).strip())
            # a passage already quoted from here is not offered again
            if span is not None and not any(flat.startswith(d, span[0]) for d in done):
                starts[span[0]] = span[1]
        if not starts:
            kinds.discard("Quote")
            if quotes:
                kinds.add("End: Answer")  # nothing left here to quote
        ends = [
            at + len(n) for p in passages.ends if (at := flat.find(n := normalize(p).strip())) >= 0
        ]
    else:
        top = observation.scroll
        visible = page.lines[top : top + observation.window_lines]
        text = " ".join(plain_line(line) for line in visible)
    return CommandConstraint(
        links,
        text,
        page_open=page is not None,
        can_go_back=observation.can_go_back,
        can_answer=bool(quotes),
        exclude=exclude,
        kinds=kinds,
        quote_starts=starts,
        quote_ends=ends,
        exact=True,
    )


def _tightest(text: str, begin: str, through: str, tries: int = 100) -> tuple[int, int] | None:
    """The shortest span of ``text`` from an occurrence of ``begin`` to the end of the
    next ``through`` at or after it (a heading such as "Capital" can occur earlier on
    the page too), as (start, end); None if there is none."""
    best: tuple[int, int] | None = None
    at = text.find(begin) if begin else -1
    while at >= 0 and tries > 0:
        tries -= 1
        end = text.find(through, at)
        if end < 0:
            break
        if best is None or end + len(through) - at < best[1] - best[0]:
            best = (at, end + len(through))
        at = text.find(begin, at + 1)
    return best
