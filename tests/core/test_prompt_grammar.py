"""Each procedure's prompt and grammar cannot drift apart (issue 12): the prompt's
worked example is replayed in a real BrowserEnv, set up as the procedure sets it up,
over the pages the example shows; every command it takes must be one the procedure's
grammar admits there, and every command its menu offers one the grammar admits
somewhere along the way."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from tests.fakes import FakeWeb
from webqa import prompting
from webqa.browser.env import BrowserEnv
from webqa.browser.page import normalize
from webqa.procedure import Free, Guided, Procedure
from webqa.web.base import Document, SearchResult

MARKER = re.compile(r"【(\d+)†([^†】]+)(?:†([^】]+))?】")
RESULTS = "Search results for: "


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


def web_of(steps: list[dict[str, str]]) -> FakeWeb:
    """The example's results page and pages as a FakeWeb: a page's text is every line
    the example shows of it, in order."""
    results: dict[str, list[SearchResult]] = {}
    urls: dict[str, str] = {}
    pages: dict[str, list[str]] = {}
    for step in steps:
        title = step["Title"].rsplit(" (", 1)[0]
        lines = step["Text"].splitlines()
        if title.startswith(RESULTS):
            found = []
            for i, line in enumerate(lines):
                if m := MARKER.fullmatch(line.strip()):
                    url = f"https://{m.group(3)}.example/{m.group(2).replace(' ', '_')}"
                    urls[m.group(2)] = url
                    snippet = lines[i + 1] if i + 1 < len(lines) else ""
                    found.append(SearchResult(m.group(2), url, snippet))
            results[title[len(RESULTS) :]] = found
        elif title != "Blank page":
            shown = pages.setdefault(title, [])
            shown += [MARKER.sub(lambda m: m.group(2), x) for x in lines if x not in shown]
    docs = [
        Document(urls[title], title, "".join(f"<p>{x}</p>" for x in text), clean=True)
        for title, text in pages.items()
    ]
    return FakeWeb(docs, results)


def quoted_first(steps: list[dict[str, str]]):  # type: ignore[no-untyped-def]
    """A ranker that puts first the passages the example quotes."""
    quotes = [normalize(s["Next action"][len("Quote: ") :]) for s in steps]

    def rank(question: str, passages: Sequence[str]) -> list[float]:
        return [float(any(normalize(p) in q for q in quotes)) for p in passages]

    return rank


def replay(procedure: Procedure, prompt: str) -> list[str]:
    """What is wrong with ``prompt``'s example under ``procedure``: each command its
    grammar refuses where the example takes it, and each command of the menu it never
    admits (empty: nothing)."""
    menu = re.findall(
        r"^(Search|Clicked on link|Quote:|Back|Find in page:|Scrolled|Top|End: \w+)",
        prompt.split("How to work")[0],
        re.M,
    )
    assert menu, "the prompt lists its commands before 'How to work'"
    steps = blocks(prompt)
    assert len(steps) >= 3
    question = steps[0]["Question"]
    taken = [] if steps[0]["Past actions"] == "None yet" else steps[0]["Past actions"].splitlines()
    taken += [s["Next action"] for s in steps]
    course = procedure.start(question)
    env = BrowserEnv(
        web_of(steps),
        max_actions=20,
        page_first=course.page_first,
        window_lines=course.window_lines,
        opens_at=course.opens_at,
    )
    env.reset(question)
    wrong, admitted = [], set()
    for action in taken:
        grammar = course.grammar(env.observation, 0.0)
        opening = course.opening(env.observation) if not env.trajectory else None
        admitted |= {kind for kind in menu if grammar.allows(kind)}
        if opening is not None and action != opening:
            wrong.append(f"the example starts with {action!r}, the procedure with {opening!r}")
        elif opening is None and not grammar.complete(action):
            wrong.append(f"the grammar refuses the example's {action!r}")
        result = env.step(action)  # refused or not, the example goes on as it says
        if not result.info["valid"]:
            wrong.append(f"the browser refuses the example's {action!r}: {result.info['error']}")
    assert env.observation.quotes, "the example ends with a quote"
    never = [c for c in dict.fromkeys(menu) if c not in admitted]
    return wrong + [f"the prompt offers {c!r}, which the grammar never admits" for c in never]


def procedures(prompt: str) -> dict[str, Procedure]:
    return {"browse_system": Free(), "browse_guided_system": Guided(quoted_first(blocks(prompt)))}


@pytest.mark.parametrize("name", ["browse_system", "browse_guided_system"])
def test_each_prompt_s_example_replays_under_its_procedure_s_grammar(name: str) -> None:
    prompt = prompting.render(name)
    procedure = procedures(prompt)[name]
    assert procedure.start("q").prompt == name  # the procedure's own prompt
    assert replay(procedure, prompt) == []


def test_an_example_that_takes_a_refused_command_is_caught() -> None:
    guided = prompting.render("browse_guided_system")
    last = guided.rindex("●Next action\nEnd: Answer")
    backs = guided[:last] + "●Next action\nBack" + guided[last + len("●Next action\nEnd: Answer") :]
    assert replay(procedures(guided)["browse_guided_system"], backs) == [
        "the grammar refuses the example's 'Back'"
    ]
    free = prompting.render("browse_system")
    spaced = free.replace("Find in page: discovered", "Find in page:  discovered")
    assert replay(Free(), spaced) == [
        "the grammar refuses the example's 'Find in page:  discovered'"
    ]


def test_a_menu_that_offers_what_the_grammar_never_admits_is_caught() -> None:
    guided = prompting.render("browse_guided_system")
    offered = guided.replace(
        "End: Answer                stop", "Back                       go back\nEnd: Answer stop", 1
    )
    assert replay(procedures(guided)["browse_guided_system"], offered) == [
        "the prompt offers 'Back', which the grammar never admits"
    ]
