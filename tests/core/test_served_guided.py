"""A small model behind a server browses on the guided procedure, its commands held to
the grammar's list by the server (here a scripted one on 127.0.0.1 that honours a GBNF
grammar as llama.cpp's server does); a big one keeps WebGPT's free command set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes import BF, FakeWeb, flat_ranker
from tests.models.stub_server import Reply, StubServer
from tests.models.test_server_decoding import literals
from webqa import api
from webqa.models.openai import OpenAIPolicy
from webqa.models.server_decoding import ModeCache

Q = "What is the capital of Burkina Faso?"
ANSWER = "The capital of Burkina Faso is Ouagadougou [1]."


def grammar_server(body: dict[str, Any]) -> Reply:
    """Takes the last command a grammar admits (a passage's longest quote); answers
    otherwise; a free command set gets a search."""
    if "grammar" in body:
        return Reply(literals(body["grammar"])[-1])
    text = body["messages"][-1]["content"]
    if "Search results" in text or "●Next action" in text or "Actions left" in text:
        return Reply("Search capital of Burkina Faso")
    return Reply(ANSWER)


def run(name: str, tmp_path: Path, **options: Any) -> tuple[api.Result, list[dict[str, Any]]]:
    with StubServer(grammar_server) as server:
        modes = ModeCache(tmp_path / "servers.json")
        with OpenAIPolicy(name, api_base=server.api_base, modes=modes) as policy:
            result = api.answer(
                Q,
                model=policy,
                web=FakeWeb([BF], any_query=True),
                ranker=flat_ranker,
                log=False,
                **{"max_actions": 6, **options},
            )
        return result, [b for b in server.requests if "Say hello." not in str(b["messages"])]


def test_a_small_served_model_browses_guided_under_the_servers_grammar(tmp_path: Path) -> None:
    result, sent = run("qwen2.5-0.5b-instruct", tmp_path)
    steps = [s.command for s in result.candidates[0].steps]
    assert steps[0] == f"Search {Q}"  # the guided opening, no model call
    assert steps[1] == "Clicked on link 0"  # the one result: opened without a call too
    assert steps[2].startswith("Quote: ") and "Ouagadougou" in steps[2]
    assert steps[-1] == "End: Answer"
    assert len(steps) == len(set(steps))  # no command repeated
    assert "grammar" in sent[0]  # the quote was chosen under the grammar
    assert "the first search is the question itself" in sent[0]["messages"][0]["content"]
    assert result.answer == ANSWER


def test_a_big_served_model_keeps_the_free_command_set(tmp_path: Path) -> None:
    result, sent = run("llama3.1:70b", tmp_path, max_actions=2)
    assert not any("grammar" in b for b in sent)
    assert "the first search is the question itself" not in sent[0]["messages"][0]["content"]
    assert result.candidates[0].steps[0].command == "Search capital of Burkina Faso"
    # one flag away: the same model, guided
    guided, sent = run("llama3.1:70b", tmp_path, browsing="guided")
    assert guided.candidates[0].steps[0].command == f"Search {Q}"
    assert "grammar" in sent[0]


def test_a_bad_browsing_fails_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(api.InputError, match="unknown browsing"):
        run("qwen2.5-0.5b", tmp_path, browsing="fast")


def test_a_batch_of_questions_browses_guided_through_the_server(tmp_path: Path) -> None:
    questions = [Q, "Which city is the capital of Burkina Faso?"]
    with StubServer(grammar_server) as server:
        done = list(
            api.answer_many(
                questions,
                concurrency=2,
                model="qwen2.5-0.5b",
                api_base=server.api_base,
                web=FakeWeb([BF], any_query=True),
                ranker=flat_ranker,
                log=False,
                decoding="grammar",  # forced: no probe
            )
        )
    assert all(d.ok for d in done) and len(done) == 2
    for d in done:
        assert d.result is not None
        assert d.result.candidates[0].steps[0].command == f"Search {d.question.text}"
    assert not any("Say hello." in str(b["messages"]) for b in server.requests)
    assert sum("grammar" in b for b in server.requests) == 2  # one quote each
