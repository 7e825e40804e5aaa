"""The observation text the model reads each step, in WebGPT's layout."""

from __future__ import annotations

from collections.abc import Sequence

from webqa.browser.commands import ActionRecord
from webqa.browser.page import Page, clip, sanitize
from webqa.values import Quote

BLANK_TITLE = "Blank page"  # title shown before any page is open
NONE_YET = "None yet"  # shown when there are no quotes or past actions yet
QUOTE_PREVIEW_CHARS = 300  # longer quotes are cut with "…" in the observation
ACTION_PREVIEW_CHARS = 120  # longer commands in past actions are cut with "…"
REASON_PREVIEW_CHARS = 160  # and longer reasons too


def action_line(action: ActionRecord) -> str:
    """One line of the past actions: the command, with the reason if it was invalid."""
    text = clip(sanitize(action.text), ACTION_PREVIEW_CHARS)
    note = f" ({clip(sanitize(action.message), REASON_PREVIEW_CHARS)})" if action.message else ""
    return f"Invalid: {text}{note}" if not action.valid else f"{text}{note}"


def title_line(page: Page | None) -> str:
    """``<title> (<domain>)``, or the blank-page title."""
    if page is None:
        return BLANK_TITLE
    return f"{page.title} ({page.domain})" if page.domain else page.title


def render_observation(
    *,
    question: str,
    quotes: Sequence[Quote],
    actions: Sequence[ActionRecord],
    page: Page | None,
    top: int,
    window_lines: int,
    actions_left: int,
    page_first: bool = False,
) -> str:
    """The full observation: question, quotes, past actions, page window, actions left.

    Everything shown is sanitized (``page.sanitize``): the question too, so that a
    pasted terminal escape or a forged "●Next action" line reaches the model as text.
    A page cut for its size (``Page.notice``) says so after its last line.

    ``page_first`` puts the page window right after the question, before the quotes and
    past actions: consecutive steps on the same window (a quote, then the choice to quote
    more or end) then begin with the same text, so a model that keeps the previous
    step's KV cache runs only what changed (the guided procedure's layout).
    """
    memory = ["●Quotes"]
    for i, q in enumerate(quotes, 1):
        memory.append(f"From quote {i} ({q.title} · {q.domain}):")
        memory.append(clip(q.text, QUOTE_PREVIEW_CHARS))
    if not quotes:
        memory.append(NONE_YET)
    memory.append("●Past actions")
    memory.extend(action_line(a) for a in actions)
    if not actions:
        memory.append(NONE_YET)
    visible = page.lines[top : top + window_lines] if page is not None else ()
    window = [
        "●Title",
        title_line(page),
        f"●Scrollbar: {top} - {top + len(visible)}",
        "●Text",
        *visible,
    ]
    if page is not None and page.notice and top + len(visible) >= len(page.lines):
        window.append(f"[{sanitize(page.notice)}]")  # the end of a page that was cut
    middle = [*window, *memory] if page_first else [*memory, *window]
    return "\n".join(
        [
            "●Question",
            sanitize(question).strip(),
            *middle,
            f"●Actions left: {actions_left}",
            "●Next action",
        ]
    )
