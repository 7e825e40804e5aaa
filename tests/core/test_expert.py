"""The scripted expert (webqa.expert): its demonstrations replay in a fresh browser to
the same quotes, and the training examples any demonstration gives are exactly the
chats the policy sees; bad demonstrations are errors naming their file and line."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from tests.fakes import BF, QUOTE, FakeWeb
from webqa import demos
from webqa.answering import answer_chat
from webqa.browser.env import Observation
from webqa.browsing import browse_chat
from webqa.episode import new_episode
from webqa.errors import InputError
from webqa.expert import (
    EVIDENCE_OUT_OF_VIEW,
    NOT_IN_RESULTS,
    UNANSWERABLE,
    Row,
    demonstrate,
    in_view,
    read_demonstrations,
    read_rows,
    run_expert,
    training_examples,
    write_demonstrations,
)
from webqa.frontend.policy import add_policy_parser, run_policy
from webqa.procedure import Guided
from webqa.web.base import Document

MALI = Document(
    url="https://example.org/mali",
    title="Mali",
    body="<html><body><h1>Mali</h1><p>Mali is a landlocked country in West Africa."
    " Its capital and largest city is Bamako.</p></body></html>",
    clean=True,
)
NIGER = Document(
    url="https://example.org/niger",
    title="Niger",
    body="<html><body><h1>Niger</h1><p>Niger is a landlocked country in West Africa.</p>"
    + "".join(f"<p>Fact {i} about Niger, a line of its own.</p>" for i in range(40))
    + "<p>Its capital is Niamey.</p></body></html>",  # NIAMEY
    clean=True,
)
NIAMEY = "Its capital is Niamey."
BURKINA = Row(
    question="What is the capital of Burkina Faso?",
    answers=("Ouagadougou",),
    answerable=True,
    sources=("Burkina Faso",),
    evidence=(QUOTE,),
    id="bf",
    kind="wiki",
)


def named_first(question: str, passages: Sequence[str]) -> list[float]:
    """A passage ranker: the passages naming a capital first."""
    return [float("capital" in p) for p in passages]


def web() -> FakeWeb:
    return FakeWeb([BF, MALI, NIGER], any_query=True)


def replay(demo: demos.Demonstration, procedure: Guided) -> list[str]:
    """Every command of ``demo`` on a fresh browser laid out by ``procedure``: the
    observations before each (asserting each command is valid) and the quotes."""
    course = procedure.start(demo.question)
    episode = new_episode(
        0, demo.question, web(), course, max_actions=20, seed=0, temperature=0.0, started=0.0
    )
    env, observation = episode.env, episode.observation
    seen = []
    for step in demo.steps:
        seen.append(observation.text)
        result = env.step(str(step["command"]))
        assert result.info["valid"], result.info
        observation = result.observation
    assert env.end_reason == "answer"
    assert list(env.quotes) == demo.quotes
    return seen


def test_the_experts_demonstration_replays_to_the_same_quotes() -> None:
    procedure = Guided(named_first)
    demo = demonstrate(BURKINA, web(), procedure)
    commands = [s["command"] for s in demo.steps]
    assert commands == [
        "Search What is the capital of Burkina Faso?",
        "Clicked on link 0",
        f"Quote: {QUOTE}",
        "End: Answer",
    ]
    assert all(s["valid"] and s["error"] is None for s in demo.steps)
    # what each step recorded is exactly what the browser showed before it
    assert [s["observation"] for s in demo.steps] == replay(demo, procedure)
    assert [s["asked"] for s in demo.steps] == [False, True, True, False]  # search, End forced
    assert all(s["admitted"] and s["prompt"] == "browse_guided_system" for s in demo.steps)
    assert demo.quotes[0].text == QUOTE and demo.end_reason == "answer"
    assert demo.answer == "Its capital and largest city is Ouagadougou [1]."
    assert demo.id == "expert-bf" and demo.web == "fake"


def test_the_expert_skips_what_it_cannot_demonstrate_and_says_why() -> None:
    rows = [
        BURKINA,
        Row("Who is Zog Xyzzy?", (), False, ("Zog",), ("none",), kind="unanswerable"),
        Row("Capital of Chad?", ("N'Djamena",), True, ("Chad",), ("N'Djamena",), kind="wiki"),
        # the evidence is far below where the page opens: never quoted blind
        Row("Which city hosts Niger's government?", ("Niamey",), True, ("Niger",), (NIAMEY,)),
        Row("What is the capital of Mali?", ("Bamako",), True, ("Mali",), ("Bamako.",)),
    ]
    made, report = run_expert(rows, web(), Guided(lambda q, ps: [0.0] * len(ps)), limit=4)
    assert report.rows == 4 and report.made == 1 and [d.id for d in made] == ["expert-bf"]
    assert report.skipped == {UNANSWERABLE: 1, NOT_IN_RESULTS: 1, EVIDENCE_OUT_OF_VIEW: 1}
    assert report.to_dict()["made_by_kind"] == {"wiki": 1}


def test_in_view_reads_the_page_window_only() -> None:
    text = (
        "●Question\nQ?\n●Title\nT\n●Scrollbar: 0 - 2\n●Text\nIts capital is 【3†Ouaga†x】\n"
        "dougou today.\n●Quotes\nNone yet\n●Past actions\nQuote: Nowhere else\n●Next action"
    )
    assert in_view(text, "its capital is Ouaga dougou")
    assert in_view(text, "Its capital━today.")
    assert not in_view(text, "Nowhere else")  # in the past actions, not on the page
    assert not in_view(text, "today━Its capital")


def demonstration_file(tmp_path: Path, *changes: dict[str, object]) -> Path:
    """A file of the expert's Burkina Faso demonstration, then one more per ``changes``
    (fields replaced; ``step3`` replaces the third step's fields)."""
    demo = demonstrate(BURKINA, web(), Guided(named_first))
    lines = [demos.to_json(demo)]
    for change in changes:
        record = json.loads(demos.to_json(demo))
        for key, value in change.items():
            if key.startswith("step"):
                record["steps"][int(key[4:]) - 1].update(value)
            else:
                record[key] = value
        lines.append(json.dumps(record))
    path = tmp_path / "demos.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_examples_are_exactly_what_the_policy_sees(tmp_path: Path) -> None:
    path = demonstration_file(tmp_path, {"answer": "", "end_reason": "abandoned"})
    found = training_examples(read_demonstrations(path), "demos.jsonl")
    demo = read_demonstrations(path)[0][1]
    assert (found.demonstrations, found.used, found.unanswered) == (2, 1, 1)
    assert found.decided_steps == 2  # the first search and the forced End: Answer
    browse = [e for e in found.examples if e.kind == "browse"]
    assert [e.target for e in browse] == ["Clicked on link 0", f"Quote: {QUOTE}"]
    for example, step in zip(browse, demo.steps[1:3], strict=True):
        shown = replay(demo, Guided(named_first))[demo.steps.index(step)]
        assert [m.content for m in example.chat] == [
            m.content
            for m in browse_chat(
                Observation(shown, demo.question, None, 0, (), 0), "browse_guided_system"
            )
        ]
    answer = found.examples[-1]
    assert answer.kind == "answer" and answer.target == demo.answer
    assert answer.chat == answer_chat(demo.question, demo.quotes)
    assert answer.where == "demos.jsonl line 1 answer"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"step3": {"command": "Quote: Its capital is Paris."}}, "not in the page text shown"),
        ({"step3": {"valid": False, "error": "the quote is not on this page"}}, "quote failed"),
        ({"answer": ""}, "End: Answer but has no answer"),
        ({"answer": "Ouagadougou [2]."}, r"cites \[2\]"),
        ({"step2": {"observation": None}}, "step 2: no observation"),
        ({"step2": {"prompt": "../../secret"}}, "unknown prompt"),
        ({"quotes": [{"title": "x"}]}, "quote 1: expected"),
    ],
)
def test_a_bad_demonstration_is_an_error_naming_its_line(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = demonstration_file(tmp_path, change)
    with pytest.raises(InputError, match=rf"demos\.jsonl line 2\b.*{message}"):
        training_examples(read_demonstrations(path), str(path))


def test_a_file_that_is_not_json_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = demonstration_file(tmp_path)
    path.write_text(path.read_text() + "\n{not json\n")
    with pytest.raises(InputError, match=r"demos\.jsonl line 3: not valid JSON"):
        read_demonstrations(path)


def test_write_refuses_to_replace_other_files(tmp_path: Path) -> None:
    demo = demonstrate(BURKINA, web(), Guided(named_first))
    path = write_demonstrations([demo], tmp_path / "out.jsonl")
    assert [d for _, d in read_demonstrations(path)] == [
        demos.Demonstration(**{**demo.__dict__, "steps": demo.steps})
    ]
    write_demonstrations([demo, demo], path)  # a demonstrations file: replaced
    assert len(read_demonstrations(path)) == 2
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n")
    with pytest.raises(InputError, match="not a demonstrations file"):
        write_demonstrations([demo], notes)
    assert notes.read_text() == "# my notes\n"


def test_policy_demos_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    questions = tmp_path / "q.jsonl"
    rows = [
        {
            "id": "bf",
            "question": BURKINA.question,
            "answers": ["Ouagadougou"],
            "answerable": True,
            "sources": [{"corpus": "wiki", "title": "Burkina Faso"}],
            "evidence": QUOTE,
            "kind": "wiki",
        },
        {"id": "u", "question": "Who is Zog?", "answers": [], "answerable": False},
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert [r.id for r in read_rows(questions)] == ["bf", "u"]
    parser = argparse.ArgumentParser()
    add_policy_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "demos.jsonl"
    args = parser.parse_args(["policy", "demos", str(questions), "-o", str(out), "--json"])
    started = time.perf_counter()
    code = run_policy(
        args,
        Console(file=None, force_terminal=False),
        Console(stderr=True, force_terminal=False),
        open_web=web,
        ranker=lambda: named_first,
    )
    assert code == 0 and time.perf_counter() - started < 30
    report = json.loads(capsys.readouterr().out)
    assert report["made"] == 1 and report["skipped"] == {UNANSWERABLE: 1}
    assert [d.id for _, d in read_demonstrations(out)] == ["expert-bf"]
