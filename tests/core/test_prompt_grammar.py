"""The guided prompt and the guided grammar cannot drift apart (issue 12): the prompt's
worked example is replayed in a real BrowserEnv over the pages it shows, and every
command it takes, and every command its menu offers, must be one the grammar of the
default guided procedure admits."""

from __future__ import annotations

import re

from tests.fakes import FakeWeb
from webqa import prompting
from webqa.agent import AgentConfig, first_search
from webqa.browser.env import BrowserEnv
from webqa.web.base import Document, SearchResult

MARKER = re.compile(r"【(\d+)†([^†】]+)(?:†([^】]+))?】")


def blocks(prompt: str) -> list[dict[str, str]]:
    """The example's steps: each observation's sections and the action it was given."""
    example = prompt.split("Here is a complete example.", 1)[1]
    example = example.split("That is the end of the example.", 1)[0]
    steps = []
    for chunk in example.split("●Question\n")[1:]:
        sections: dict[str, list[str]] = {}
        name = "Question"
        for line in chunk.strip().splitlines():
            if line.startswith("●"):
                name = line[1:].split(":", 1)[0].strip()
                sections[name] = []
            else:
                sections.setdefault(name, []).append(line)
        steps.append({k: "\n".join(v).strip() for k, v in sections.items()})
    return steps


def web_of(steps: list[dict[str, str]]) -> tuple[FakeWeb, dict[str, str]]:
    """The example's results page and pages as a FakeWeb (a page's text as its body)."""
    results: list[SearchResult] = []
    urls: dict[str, str] = {}
    lines = steps[0]["Text"].splitlines()
    for i, line in enumerate(lines):
        if m := MARKER.fullmatch(line.strip()):
            url = f"https://{m.group(3)}.example/{m.group(2).replace(' ', '_')}"
            urls[m.group(2)] = url
            snippet = lines[i + 1] if i + 1 < len(lines) else ""
            results.append(SearchResult(m.group(2), url, snippet))
    docs = []
    for step in steps[1:]:
        title = step["Title"].rsplit(" (", 1)[0]
        text = MARKER.sub(lambda m: m.group(2), step["Text"])
        body = "".join(f"<p>{line}</p>" for line in text.split("\n"))
        docs.append(Document(urls[title], title, f"<html><body>{body}</body></html>", clean=True))
    return FakeWeb(docs, {steps[0]["Question"]: results}), urls


def test_the_guided_example_replays_under_the_guided_grammar() -> None:
    prompt = prompting.render("browse_guided_system")
    menu = re.findall(
        r"^(Search|Clicked on link|Quote:|Back|Find in page:|Scrolled|Top|End: \w+)",
        prompt.split("How to work")[0],
        re.M,
    )
    assert menu, "the prompt lists its commands before 'How to work'"
    steps = blocks(prompt)
    assert len(steps) >= 3
    question = steps[0]["Question"]
    quotes = [
        s["Next action"][len("Quote: ") :] for s in steps if s["Next action"].startswith("Quote: ")
    ]
    offered = [(q, q) for q in quotes]  # the shortlist offers the passages the example quotes
    web, _ = web_of(steps)
    config = AgentConfig()  # the default guided procedure
    env = BrowserEnv(web, max_actions=20, page_first=True)
    env.reset(question)
    before = env.observation.constraint(guided=True, explore=config.explore)
    search = first_search(question)
    assert before.complete(search)
    assert steps[0]["Past actions"].splitlines() == [search]
    env.step(search)
    admitted = {kind for kind in menu if before.allows(kind)}
    for step in steps:
        constraint = env.observation.constraint(
            guided=True, quote_from=offered, explore=config.explore
        )
        action = step["Next action"]
        assert constraint.complete(action), f"the grammar refuses the example's {action!r}"
        admitted |= {kind for kind in menu if constraint.allows(kind)}
        result = env.step(action)
        assert result.info["valid"], result.info
    assert env.observation.quotes, "the example ends with a quote"
    never = sorted(set(menu) - admitted)
    assert not never, f"the prompt offers commands the guided grammar never admits: {never}"
