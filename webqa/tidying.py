"""Answer hygiene: a drafted answer without what a small model echoes of its prompt.

Small models echo the answer prompt: the question, "Answer:" labels, the numbered quotes
as a reference list, quotes pasted back as a list. ``tidy`` leaves the answer alone, one
paragraph with its [n] marks; the end (``webqa.drafting``) and the judge of a draft
(``webqa.answering.states_answer``) both read a draft through it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from webqa.text import (
    CITATION_RE,
    find_citations,
    remove_citations,
    sentence_ends,
    split_sentences,
)
from webqa.values import Quote

MAX_DRAFT_CHARS = 20_000  # a longer draft is cut here before it is tidied (bounds the work)
# A line that starts with a label of the answer prompt ("Answer:", "**Question:**", "##
# Quotes:") or of a reference list ("Sources:"); group 1 names it.
_LABEL = re.compile(
    r"^\s*(?:#+\s*)?[*_]*(?:(?:final|short)\s+)?"
    r"(answer|question|quotes?|references?|sources?|citations?)[*_]*\s*:[*_]*",
    re.IGNORECASE,
)
# The same labels, capitalised, inside a line: each starts a line of its own.
_INLINE_LABEL = re.compile(
    r"(?<=[^\s#])[ \t]+(?=[*_]*(?:Answer|Question|Quotes?|References?|Sources?)[*_]*\s*:)"
)
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")
_LEADING_MARKS = re.compile(rf"^\s*(?:[-*•]\s*)?((?:{CITATION_RE.pattern}\s*)+):?\s*")
_QUOTATION = "\"'“”‘’«»"
_END = re.compile(r"[.!?]+[\"'”’)]*$")
_AFTER_TITLE = re.compile(r"\s*(?:[-–—|(:,.…]|$)")  # what follows a title in a source list
_MIN_PASTED = 20  # normalised characters a line needs to count as a pasted quote
_ROUNDS = 16  # of the final tidying: each exposes what the last one dropped


def _norm(text: str) -> str:
    """Text compared loosely: no accents, lower case, one space for any white space
    (as benchmarks/quality.py compares an answer with its question)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.lower().replace("\u2019", "'").split())


def tidy(question: str, text: str, quotes: Sequence[Quote]) -> str:
    """``text`` as the answer alone: one paragraph with its [n] marks, or "" when nothing
    but echo was in it.

    Small models echo the answer prompt: the question, the numbered quotes ("[1] Poland -
    The World Factbook ..."), "Question:"/"Quotes:"/"Answer:" labels, quotes pasted back
    as a list. The text before any label is the answer if anything of it is left, else
    the first "Answer:" section (to the next label), else what follows the other
    labels. In it, lines that list a source (a citation mark or list marker before a
    quote's title or address) go, and so do lines that paste a quote verbatim as a list
    item, unless nothing else is left anywhere (then they are the answer, marked with the
    quote they came from); sentences that restate the question go; a citation mark that
    opens a line moves to the end of its sentence. No rule is about particular questions.
    """
    text = _INLINE_LABEL.sub("\n", text[:MAX_DRAFT_CHARS])
    before: list[str] = []  # the lines before any label
    answers: list[list[str]] = []  # each "Answer:" section's lines
    after: list[str] = []  # lines after a question or a list of sources
    section = before
    in_list = False
    for line in text.splitlines():
        label = _LABEL.match(line)
        if label:
            kind = label.group(1).lower()
            rest = line[label.end() :]
            in_list = False
            if kind == "answer":
                answers.append([rest])
                section = answers[-1]
            elif kind == "question":  # the question goes, to its question mark
                section = after
                asked = rest.find("?")
                after.append(rest[asked + 1 :] if asked >= 0 else "")
            else:  # quotes or sources: the label's line and the entries under it go
                section, in_list = after, True
            continue
        if in_list:
            entry = _LIST_MARK.match(line) or _LEADING_MARKS.match(line)
            if not line.strip() or entry or line.lstrip()[0] in _QUOTATION:
                continue
            in_list = False
        section.append(line)
    quoted = [_norm(q.text) for q in quotes]
    for pasted in (False, True):
        for lines in (before, *answers, after):
            answer = _final(question, _paragraph(lines, quotes, quoted, pasted=pasted))
            if answer:
                return answer
    return ""


def _paragraph(
    lines: list[str], quotes: Sequence[Quote], quoted: list[str], *, pasted: bool
) -> str:
    """``lines`` without source lists and (unless ``pasted``) quotes pasted as a list
    (``quoted``: the quotes' texts, normalised), as one paragraph."""
    kept: list[str] = []
    for line in lines:
        line = line.strip()
        if not line or _lists_a_source(line, quotes):
            continue
        marks = _LEADING_MARKS.match(line)
        listed = bool(marks or _LIST_MARK.match(line) or line[0] in _QUOTATION)
        body = line[marks.end() :] if marks else _LIST_MARK.sub("", line, count=1)
        core = _norm(remove_citations(body).strip(_QUOTATION + " "))
        source = next((n for n, q in enumerate(quoted, 1) if core in q), 0)
        if listed and len(core) >= _MIN_PASTED and source:
            if pasted:
                bare = remove_citations(body).strip(_QUOTATION + " ")
                cited = find_citations(line)
                kept.append(_cite(bare, _marks(cited) if cited else f"[{source}]"))
            continue
        if marks:
            body = _cite(body, _marks(find_citations(marks.group(1))))
        if body and listed and not _END.search(remove_citations(body)):
            body += ";"  # a list item, run into the paragraph
        if body:
            kept.append(body)
    return " ".join(" ".join(kept).rstrip(";").split())


def _lists_a_source(line: str, quotes: Sequence[Quote]) -> bool:
    """Whether ``line`` is an entry of a reference list: citation marks alone, or a
    citation mark before a quote's title, or a list marker before a title and more
    ("- Poland - The World Factbook"), or either before a quote's address or "(domain)"."""
    marks = _LEADING_MARKS.match(line)
    if not marks and not _LIST_MARK.match(line):
        return False
    rest = line[marks.end() :] if marks else _LIST_MARK.sub("", line, count=1)
    if not rest.strip():
        return True
    start = _norm(rest)
    for q in quotes:
        title = _norm(q.title)
        after = start[len(title) :] if title and start.startswith(title) else None
        if after is not None and _AFTER_TITLE.match(after) and (marks or after.strip()):
            return True
        if (q.url and q.url in rest) or (q.domain and f"({q.domain})" in rest):
            return True
    return False


def _marks(numbers: list[int]) -> str:
    return "".join(f"[{n}]" for n in dict.fromkeys(numbers))


def _cite(text: str, marks: str) -> str:
    """``text`` with ``marks`` at the end of its first sentence (unless it cites them there
    already); "" if ``text`` says nothing."""
    if not text.strip():
        return ""
    ends = sentence_ends(text)
    end = ends[0] if ends else len(text)
    first, rest = text[:end].rstrip(), text[end:]
    if set(find_citations(marks)) <= set(find_citations(first)):
        return text
    if not any(ch.isalnum() for ch in remove_citations(first)):
        return text  # no sentence to cite: the marks go
    stop = _END.search(first)
    if stop:
        first = f"{first[: stop.start()].rstrip()} {marks}{first[stop.start() :]}"
    else:
        first = f"{first} {marks}"
    return first + rest


def _final(question: str, text: str) -> str:
    """One paragraph that neither starts with a label or a citation mark nor restates
    the question ("" if it cannot be made so in ``_ROUNDS`` rounds)."""
    asked = _norm(question)
    whole = len(asked) >= 12 and bool(_END.search(question.strip()))
    raw = [s for s in split_sentences(question) if s.endswith("?") and len(_norm(s)) >= 12]
    if whole:
        raw.insert(0, question.strip())
    asks = [_norm(s) for s in raw]
    bare = {_norm(s).rstrip(".!?;: ") for s in [question, *split_sentences(question)]}

    def restates(sentence: str) -> bool:
        said = _norm(remove_citations(_unlabelled(sentence)[0]))
        return any(a in said for a in asks) or said.rstrip(".!?;: ") in bare

    for _ in range(_ROUNDS):
        before = text
        text, marks = _unlabelled(text)
        if marks:
            text = _cite(text, _marks(marks))
        kept = [s for s in (_unasked(s, raw) for s in split_sentences(text)) if not restates(s)]
        if whole and asked in _norm(" ".join(kept)):
            kept = _without(kept, asked)
        text = " ".join(" ".join(kept).split())
        if text == before:
            return text if any(ch.isalnum() for ch in text) else ""  # "**" says nothing
    return ""


def _unlabelled(text: str) -> tuple[str, list[int]]:
    """``text`` without the labels and citation marks it starts with, and the numbers of
    those marks."""
    numbers: list[int] = []
    while True:
        label = _LABEL.match(text)
        marks = None if label else _LEADING_MARKS.match(text)
        if label:
            text = text[label.end() :].lstrip()
        elif marks:
            numbers += find_citations(marks.group(1))
            text = text[marks.end() :]
        else:
            return text, numbers


def _unasked(sentence: str, asks: list[str]) -> str:
    """``sentence`` without the question it opens with ("What is X? warsaw [1].")."""
    for ask in asks:
        if sentence[: len(ask)].lower() == ask.lower():
            return sentence[len(ask) :].strip()
    return sentence


def _without(sentences: list[str], asked: str) -> list[str]:
    """``sentences`` without those that the question's text (``asked``, normalised) runs
    across: it spans more than one of them."""
    starts, joined = [], ""
    for s in sentences:
        n = _norm(s)
        starts.append(len(joined) + (1 if joined and n else 0))
        joined = f"{joined} {n}" if joined and n else joined + n
    at = joined.find(asked)
    if at < 0:
        return []  # the texts disagree: keep nothing rather than the echo
    stop = at + len(asked)
    return [
        s
        for s, start in zip(sentences, starts, strict=True)
        if start + len(_norm(s)) <= at or start >= stop
    ]
