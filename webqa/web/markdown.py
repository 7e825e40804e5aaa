"""A small Markdown to HTML converter: enough for READMEs and notes, no dependency.

Handles ATX headings (``#``), paragraphs, ``-``/``*``/``+`` and ``1.`` lists, ``>``
quotes, fenced and indented code, horizontal rules, and inline code, ``**bold**``,
``*emphasis*``, ``[links](url)``, ``![images](src)`` and ``<https://autolinks>``.
Raw HTML in the source is escaped, not passed through.
"""

from __future__ import annotations

import html
import re

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s{0,3}\d+[.)]\s+(.*)$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_CODE_SPAN = re.compile(r"`([^`]+)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"&lt;(https?://[^\s&]+)&gt;")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EM = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")


def inline(text: str) -> str:
    """Inline Markdown of one block as HTML (the text is escaped first)."""
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(f"<code>{match.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = _CODE_SPAN.sub(keep_code, html.escape(text, quote=False))
    out = _IMAGE.sub(lambda m: f'<img alt="{m.group(1)}" src="{_attr(m.group(2))}">', out)
    out = _LINK.sub(lambda m: f'<a href="{_attr(m.group(2))}">{m.group(1)}</a>', out)
    out = _AUTOLINK.sub(lambda m: f'<a href="{m.group(1)}">{m.group(1)}</a>', out)
    out = _STRONG.sub(r"<strong>\2</strong>", out)
    out = _EM.sub(r"<em>\2</em>", out)
    return re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m.group(1))], out)


def _attr(url: str) -> str:
    return url.replace('"', "%22")


def markdown_to_html(source: str) -> str:
    """A Markdown document as an HTML page; the first heading is its ``<title>``."""
    blocks: list[str] = []
    title = ""
    para: list[str] = []
    items: list[str] = []
    list_tag = ""
    quote: list[str] = []

    def flush() -> None:
        nonlocal list_tag
        if para:
            blocks.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if items:
            lis = "".join(f"<li>{inline(item)}</li>" for item in items)
            blocks.append(f"<{list_tag}>{lis}</{list_tag}>")
            items.clear()
        if quote:
            blocks.append(f"<blockquote><p>{inline(' '.join(quote))}</p></blockquote>")
            quote.clear()

    lines = source.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if fence_match := _FENCE.match(line):
            flush()
            fence = fence_match.group(1)
            code = []
            while i < len(lines) and not lines[i].lstrip().startswith(fence):
                code.append(lines[i])
                i += 1
            i += 1
            blocks.append(f"<pre><code>{html.escape(chr(10).join(code))}</code></pre>")
        elif not line.strip():
            flush()
        elif heading := _HEADING.match(line):
            flush()
            level, text = len(heading.group(1)), heading.group(2)
            title = title or text
            slug = re.sub(r"[^\w]+", "-", text.lower()).strip("-")
            blocks.append(f'<h{level} id="{slug}">{inline(text)}</h{level}>')
        elif _RULE.match(line):
            flush()
            blocks.append("<hr>")
        elif bullet := _BULLET.match(line) or _NUMBERED.match(line):
            tag = "ul" if _BULLET.match(line) else "ol"
            if para or quote or (items and tag != list_tag):
                flush()
            list_tag = tag
            items.append(bullet.group(1))
        elif line.startswith(">"):
            if para or items:
                flush()
            quote.append(line[1:].strip())
        elif line.startswith("    ") and not para and not items:
            flush()
            code = [line[4:]]
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                code.append(lines[i][4:])
                i += 1
            text = chr(10).join(code).rstrip("\n")
            blocks.append(f"<pre><code>{html.escape(text)}</code></pre>")
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()  # a list item continued
        else:
            if items or quote:
                flush()
            para.append(line.strip())
    flush()
    head = f"<title>{html.escape(title)}</title>" if title else ""
    body = "\n".join(blocks)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8">{head}</head>\n'
        f"<body>\n{body}\n</body></html>\n"
    )
