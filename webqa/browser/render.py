"""The observation text the model reads each step, in WebGPT's layout."""

from __future__ import annotations

from collections.abc import Sequence

from webqa.browser.commands import ActionRecord
from webqa.browser.page import Page, Quote, one_line, sanitize

BLANK_TITLE = "Blank page"  # title shown before any page is open
NONE_YET = "None yet"  # shown when there are no quotes or past actions yet
QUOTE_PREVIEW_CHARS = 300  # longer quotes are cut with "…" in the observation
ACTION_PREVIEW_CHARS = 120  # longer commands in past actions are cut with "…"
REASON_PREVIEW_CHARS = 160  # and longer reasons too


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with "…" if longer."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


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
) -> str:
    """The full observation: question, quotes, past actions, page window, actions left."""
    out = ["●Question", question.strip(), "●Quotes"]
    for i, q in enumerate(quotes, 1):
        out.append(f"From quote {i} ({q.title} · {q.domain}):")
        out.append(clip(q.text, QUOTE_PREVIEW_CHARS))
    if not quotes:
        out.append(NONE_YET)
    out.append("●Past actions")
    out.extend(action_line(a) for a in actions)
    if not actions:
        out.append(NONE_YET)
    visible = page.lines[top : top + window_lines] if page is not None else ()
    out += [
        "●Title",
        title_line(page),
        f"●Scrollbar: {top} - {top + len(visible)}",
        "●Text",
        *visible,
        f"●Actions left: {actions_left}",
        "●Next action",
    ]
    return "\n".join(out)
