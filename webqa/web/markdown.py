"""Markdown to an HTML page, for folders of notes built into a ZIM (``webqa corpus build``).

CommonMark plus tables and strikethrough, parsed by markdown-it-py. The source is
untrusted, so raw HTML in it is *escaped*, shown as the text it is, never passed through
(markdown-it's ``html`` option off), and links with a ``javascript:``, ``vbscript:``,
``file:`` or non-image ``data:`` scheme are left as text (markdown-it's own check).
Headings get ``id`` slugs (``## Tips`` -> ``id="tips"``) so that ``notes.md#tips`` links
land. A YAML front matter block (``---`` lines around ``key: value`` lines, as static site
generators write) is not shown; its ``title:`` is the page's ``<title>``, else the first
heading is.
"""

from __future__ import annotations

import functools
import html
import re

from markdown_it import MarkdownIt
from markdown_it.token import Token


@functools.lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.{0,10000}?\n)---[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)


def _front_matter(source: str) -> tuple[str, str]:
    """``source`` without its front matter block, and that block's title ("" if none)."""
    block = _FRONT_MATTER.match(source)
    if not block:
        return source, ""
    title = _FRONT_TITLE.search(block.group(1))
    return source[block.end() :], title.group(1).strip("\"'") if title else ""


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")


def _plain(inline: Token) -> str:
    """The text an inline token shows (emphasis, code and link text, no markup)."""
    parts = [
        child.content
        for child in inline.children or []
        if child.type in ("text", "code_inline", "softbreak", "hardbreak")
    ]
    return " ".join("".join(part or " " for part in parts).split())


def markdown_to_html(source: str) -> str:
    """A Markdown document as an HTML page (see the module docstring)."""
    md = _parser()
    source, title = _front_matter(source)
    tokens = md.parse(source)
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type == "heading_open" and inline.type == "inline":
            text = _plain(inline)
            title = title or text
            if _slug(text):
                opening.attrSet("id", _slug(text))
    body = md.renderer.render(tokens, md.options, {})
    head = f"<title>{html.escape(title)}</title>" if title else ""
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">{head}</head>\n'
        f"<body>\n{body}</body></html>\n"
    )
