"""Property-based tests (Hypothesis) of the page renderer and the command parser: no
input makes them raise, hang or show what should not be shown."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from webqa.browser.commands import (
    MAX_TEXT_CHARS,
    QUOTE_SEP,
    Back,
    ClickLink,
    Command,
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
    WRAP_WIDTH,
    Page,
    clean_text,
    match_quote,
    page_from_html,
    page_from_text,
    plain_line,
)

PROPS = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], database=None
)
MARKER = re.compile(r"【(\d+)†([^†】]*)(?:†([^】]*))?】")

# Characters that make trouble: controls and escapes, bidirectional and zero-width ones,
# the browser's own markup, HTML's specials, and some ordinary text.
HOSTILE = st.sampled_from(
    list("\x00\x07\x1b\x7f\x85\x9b\u00ad\u200b\u200d\u202e\u2066\ufeff\U000e0041")
    + list("【】●†━<>&\"'=/;:#.{}()[]\\\n\t \r")
    + ["\x1b[31m", "&amp;", "&#x202e;", "&#0;", "<!--", "-->", "<![CDATA[", "]]>"]
)
TEXT = st.lists(
    st.one_of(HOSTILE, st.characters(codec="utf-8"), st.sampled_from(["abc", " ", "xyz"])),
    max_size=20,
).map("".join)
TAGS = st.sampled_from(
    "p div span a b i li ul ol table tr td th h1 h2 pre br img details summary style script "
    "title template font section nav svg".split()
)
ATTRIBUTES = st.sampled_from(
    [
        "",
        ' class="x"',
        ' id="y"',
        " hidden",
        ' aria-hidden="true"',
        ' style="display:none"',
        ' style="color:#fff"',
        ' style="font-size:0"',
        ' href="/a"',
        ' href="http://[::1"',
        ' href="javascript:x()"',
        ' href="https://ex.org/p#f"',
        ' alt="alt text"',
        " open",
    ]
)
URLS = st.sampled_from(
    [
        "https://www.example.com/wiki/Page",
        "zim://wikipedia/A/Page",
        "http://[::1",
        "http://example.com:99999/",
        "",
        "search:q",
    ]
)


@st.composite
def html_soup(draw: st.DrawFn, depth: int = 0) -> str:
    """HTML-like text: nested tags with odd attributes and hostile text, often broken."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 3 if depth < 4 else 1))
        if kind <= 1:
            parts.append(draw(TEXT))
        else:
            tag, attributes = draw(TAGS), draw(ATTRIBUTES)
            inner = draw(html_soup(depth + 1))
            close = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", "", "</x>"]))
            parts.append(f"<{tag}{attributes}>{inner}{close}")
    if depth == 0 and draw(st.booleans()):
        style = draw(
            st.sampled_from(
                [".x{display:none}", "#y{opacity:0}", "p{color:white}", "@media{", "}}{{", "/*"]
            )
        )
        parts.insert(0, f"<style>{style}</style>")
    return "".join(parts)


def check_page(page: Page) -> None:
    """What every page must satisfy, whatever it was made from."""
    shown = [page.title, *page.lines, *(link.text for link in page.links), page.plain]
    for text in shown:
        assert clean_text(text) == text, text  # nothing invisible, no controls
        assert "●" not in text
    assert "\n" not in page.title and all("\n" not in line for line in page.lines)
    assert "【" not in page.plain and "】" not in page.plain
    # link markers: each link shown exactly once, in order, with its own text and domain
    found = []
    for line in page.lines:
        assert "【" not in MARKER.sub("", line) and "】" not in MARKER.sub("", line), line
        for m in MARKER.finditer(line):
            link = page.links[int(m.group(1))]
            assert (m.group(2), m.group(3) or "") == (link.text, link.domain)
            found.append(link.id)
        assert len(line) <= WRAP_WIDTH or "【" in line, line
    assert found == [link.id for link in page.links] == list(range(len(page.links)))
    # the lines show the plain text (wrapping only adds line breaks and spaces)
    joined = " ".join(plain_line(line) for line in page.lines)
    assert joined.split() == " ".join(page.plain.split("\n")).split() or "".join(
        joined.split()
    ) == "".join(page.plain.split())
    assert all(0 <= i < len(page.plain.splitlines()) for i in page.headings)


@PROPS
@given(html=st.one_of(html_soup(), st.text(max_size=300)), url=URLS, simplify=st.booleans())
def test_any_html_renders_to_a_clean_page(html: str, url: str, simplify: bool) -> None:
    check_page(page_from_html(url, html, simplify=simplify))


@PROPS
@given(text=st.text(max_size=300), title=TEXT, url=URLS)
def test_any_text_renders_to_a_clean_page(text: str, title: str, url: str) -> None:
    check_page(page_from_text(url, text, title))


HIDES = [
    ' style="display:none"',
    ' style="visibility:hidden"',
    ' style="opacity:0"',
    ' style="color:#ffffff"',
    ' style="font-size:0px"',
    ' style="position:absolute;left:-9999px"',
    ' style="height:0;overflow:hidden"',
    " hidden",
    ' aria-hidden="true"',
    ' class="h"',
    ' class="k z"',
    ' id="hid"',
]
STYLE = "<style>.h{display:none} .z{color:#fff} #hid{clip-path:inset(50%)}</style>"


@st.composite
def hidden_and_shown(draw: st.DrawFn, depth: int = 0) -> tuple[str, list[str]]:
    """Markup holding visible words (returned) and hidden ones (all start with SECRET)."""
    html, shown = [], []
    for i in range(draw(st.integers(1, 3))):
        choice = draw(st.integers(0, 4 if depth < 3 else 2))
        word = f"w{depth}x{i}x{draw(st.integers(0, 999))}"
        if choice == 0:
            html.append(f" {word} ")
            shown.append(word)
        elif choice == 1:
            tag = draw(st.sampled_from(["div", "span"]))
            html.append(f"<{tag}{draw(st.sampled_from(HIDES))}>SECRET{word} <b>SECRET</b></{tag}>")
        elif choice == 2:
            html.append(
                f"<details><summary>{word}</summary><div>SECRET{word}</div>SECRET</details>"
            )
            shown.append(word)
        else:
            inner, inner_shown = draw(hidden_and_shown(depth + 1))
            tag = "div" if choice == 3 else "span"
            html.append(f"<{tag}>{inner}</{tag}>")
            shown.extend(inner_shown)
    return "".join(html), shown


@PROPS
@given(case=hidden_and_shown())
def test_hidden_text_never_shows_and_visible_text_always_does(case: tuple[str, list[str]]) -> None:
    html, shown = case
    page = page_from_html("https://x.org/", STYLE + html, simplify=False)
    assert "SECRET" not in page.plain
    words = page.plain.split()
    assert all(word in words for word in shown)


@PROPS
@given(html=html_soup(), data=st.data())
def test_any_stretch_of_a_page_can_be_quoted(html: str, data: st.DataObject) -> None:
    page = page_from_html("https://x.org/", html, simplify=False)
    assume(page.plain.strip())
    start = data.draw(st.integers(0, len(page.plain) - 1))
    end = data.draw(st.integers(start + 1, min(len(page.plain), start + 80)))
    piece = page.plain[start:end]
    assume(piece.strip())
    span = match_quote(page.plain, piece)
    assert span is not None and " ".join(span.split()).lower() == " ".join(piece.split()).lower()


# ------------------------------------------------------------------ command parser

COMMAND_TEXT = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(
            [
                "Search ",
                "Clicked on link ",
                "Find in page:",
                "Quote:",
                "Scrolled down ",
                "Scrolled up ",
                "End:",
                "Top",
                "Back",
                "search ",
                " Quote: ",
            ]
        ),
        st.one_of(TEXT, st.text(alphabet="0123456789 -+━\n", max_size=30)),
    ),
)


@PROPS
@given(text=COMMAND_TEXT)
def test_any_text_parses_to_a_command_or_a_clear_error(text: str) -> None:
    try:
        command = parse_command(text)
    except InvalidCommandError as e:
        assert str(e)
        return
    # a command reads back as itself from its canonical text
    assert parse_command(format_command(command)) == command


def arg(max_size: int = MAX_TEXT_CHARS) -> st.SearchStrategy[str]:
    """A command argument as the parser keeps it: stripped, one line, not empty."""
    return (
        st.text(min_size=1, max_size=max_size)
        .map(str.strip)
        .filter(lambda s: s and "\n" not in s and "\r" not in s and QUOTE_SEP not in s)
    )


COMMANDS: st.SearchStrategy[Command] = st.one_of(
    st.builds(Search, arg()),
    st.builds(ClickLink, st.integers(0, 10**9 - 1)),
    st.builds(FindInPage, arg()),
    st.builds(QuoteText, arg(1000)),
    st.builds(QuoteText, arg(500), arg(500)),
    st.builds(Scroll, st.sampled_from([-3, -2, -1, 1, 2, 3])),
    st.just(Top()),
    st.just(Back()),
    st.builds(End, st.sampled_from(["answer", "nonsense", "controversial"])),
)


@PROPS
@given(command=COMMANDS)
def test_every_command_formats_and_parses_back(command: Command) -> None:
    assert parse_command(format_command(command)) == command


def test_a_link_id_too_long_for_int_is_a_clear_error() -> None:
    for digits in (10, 5000, 100_000):
        try:
            parse_command("Clicked on link " + "7" * digits)
        except InvalidCommandError as e:
            assert str(e).startswith("there is no link 777777777")
        else:
            raise AssertionError("parsed")
