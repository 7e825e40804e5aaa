"""Holding a served model to the guided commands: the request fields, the nearest
command, the probe, and OpenAIPolicy choosing and keeping its way per server (against
scripted servers on 127.0.0.1 that honour, ignore or refuse each field)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.models.stub_server import Reply, StubServer
from webqa.browser.commands import CommandConstraint
from webqa.errors import ModelError
from webqa.models.base import GenerationRequest, Message
from webqa.models.openai import OpenAIPolicy
from webqa.models.server_decoding import (
    PROBE_TEXT,
    ModeCache,
    gbnf,
    nearest,
    probe,
    reply_text,
    request_fields,
)

_LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def literals(grammar: str) -> list[str]:
    """The strings a ``root ::= "a" | "b"`` grammar admits (as llama.cpp reads them)."""
    assert grammar.startswith("root ::= ")
    out = []
    for raw in _LITERAL.findall(grammar):
        text, i = [], 0
        while i < len(raw):
            if raw[i] == "\\":
                if raw[i + 1] == "x":
                    text.append(chr(int(raw[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                text.append(_ESCAPES[raw[i + 1]])
                i += 2
                continue
            text.append(raw[i])
            i += 1
        out.append("".join(text))
    return out


@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=5))
def test_a_grammar_admits_exactly_the_choices(choices: list[str]) -> None:
    grammar = gbnf(choices)
    assert literals(grammar) == choices
    assert grammar.count("\n") == 1  # one rule, whatever the texts hold


def test_request_fields_and_reply_text_per_way() -> None:
    listed = ["Back", 'Quote: a "b"']
    assert request_fields("choice", listed) == {"structured_outputs": {"choice": listed}}
    schema = request_fields("json", listed)["response_format"]["json_schema"]["schema"]
    assert schema == {"type": "string", "enum": listed}
    assert request_fields("nearest", listed) == {}
    assert reply_text("json", json.dumps('Quote: a "b"')) == 'Quote: a "b"'
    assert reply_text("json", "Back") == "Back"  # not JSON: as it is
    assert reply_text("grammar", '"Back"') == '"Back"'


QUOTES = [
    "Quote: Ouagadougou is the capital.",
    "Quote: Ouagadougou is the capital. It lies inland.",
    "Quote: Ouagadougou is the capital. It lies inland. The end.",
]


def test_nearest_keeps_the_kind_and_the_closest_text() -> None:
    listed = ["Clicked on link 0", "Clicked on link 3", *QUOTES, "End: Answer"]
    assert nearest("End: Answer", listed) == "End: Answer"
    assert nearest("  Clicked on link 3 ", listed) == "Clicked on link 3"
    assert nearest("Clicked on link 7", listed) == "Clicked on link 0"  # the first of equals
    assert nearest("Click 3", listed) == "Clicked on link 3"
    assert nearest("Quote: Ouagadougou is the capital. It lies", listed) == QUOTES[1]
    assert nearest("Quote: capital", listed) == QUOTES[0]
    assert nearest("End: Answer. The capital is Ouagadougou.", listed) == "End: Answer"
    # a kind not on the list: the closest of all
    assert nearest("Search capital of Burkina Faso", ["Back", *QUOTES]) in ["Back", *QUOTES]
    assert nearest("", ["Back"]) == "Back"
    with pytest.raises(ValueError):
        nearest("Back", [])


def _probe_with(honoured: str | None, refused: set[str]) -> tuple[str, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def post(body: dict[str, Any]) -> dict[str, Any] | None:
        sent.append(body)
        way = next(w for w in ("grammar", "structured_outputs", "response_format") if w in body)
        if way in refused:
            return None
        text = "Hello!"
        if way == honoured:
            text = json.dumps(PROBE_TEXT) if way == "response_format" else PROBE_TEXT
        return {"choices": [{"message": {"content": text}}]}

    def content(reply: dict[str, Any]) -> str:
        return str(reply["choices"][0]["message"]["content"])

    return probe(post, content, "m"), sent


def test_probe_takes_the_first_way_the_server_honours() -> None:
    assert _probe_with("grammar", set())[0] == "grammar"
    mode, sent = _probe_with("structured_outputs", {"grammar"})
    assert mode == "choice" and len(sent) == 2
    assert _probe_with("response_format", set())[0] == "json"  # the others ignored
    mode, sent = _probe_with(None, {"grammar", "structured_outputs", "response_format"})
    assert mode == "nearest" and len(sent) == 3


def test_mode_cache_keeps_ways_per_server(tmp_path: Path) -> None:
    cache = ModeCache(tmp_path / "servers.json")
    assert cache.get("a") is None
    cache.put("a", "grammar")
    cache.put("b", "json")
    assert ModeCache(tmp_path / "servers.json").get("a") == "grammar"
    cache.put("a", None)
    assert cache.get("a") is None and cache.get("b") == "json"
    (tmp_path / "servers.json").write_text("{not json")
    assert cache.get("b") is None  # damaged: probed again


# -- OpenAIPolicy against servers that honour, ignore or refuse each way ----------------

CLICKS = CommandConstraint([0, 1, 2], "", kinds={"Click"}, exact=True)
CHAT = [Message("system", "You browse."), Message("user", "Results: [0] A [1] B [2] C")]


def _request(constraint: Any = CLICKS) -> GenerationRequest:
    return GenerationRequest(CHAT, max_new_tokens=8, constraint=constraint, stop=("\n",))


def _is_probe(body: dict[str, Any]) -> bool:
    return body["messages"][-1]["content"] == "Say hello."


class Server:
    """A responder: honours ``grammar`` (as llama.cpp), vLLM's choice, or nothing;
    refuses unknown fields with 422 (as ``transformers serve``) when ``strict``; picks
    the admissible command at ``pick`` and otherwise replies ``free``."""

    def __init__(self, honours: str | None, *, strict: bool = False, free: str = "") -> None:
        self.honours, self.strict, self.free, self.pick = honours, strict, free, -1

    def __call__(self, body: dict[str, Any]) -> Reply:
        fields = {"grammar", "structured_outputs", "response_format"} & set(body)
        if self.strict and fields - {self.honours}:
            return Reply(status=422, error=f"Unexpected fields in the request: {fields}")
        if "grammar" in body and self.honours == "grammar":
            return Reply(literals(body["grammar"])[self.pick])
        if "structured_outputs" in body and self.honours == "structured_outputs":
            return Reply(body["structured_outputs"]["choice"][self.pick])
        return Reply(self.free or "Hello! How can I help?")


def _policy(server: StubServer, cache: Path, **options: Any) -> OpenAIPolicy:
    modes = ModeCache(cache / "servers.json")
    return OpenAIPolicy("m", api_base=server.api_base, backoff=0.01, modes=modes, **options)


def test_a_grammar_server_decodes_under_the_grammar_and_is_probed_once(tmp_path: Path) -> None:
    with StubServer(Server("grammar")) as server:
        with _policy(server, tmp_path) as policy:
            out = policy.generate([_request()])
            assert out[0].text == "Clicked on link 2"
            assert policy.served_decoding() == "guided commands held by grammar (probe)"
        sent = [b for b in server.requests if not _is_probe(b)]
        assert literals(sent[0]["grammar"]) == [f"Clicked on link {i}" for i in range(3)]
        assert json.loads((tmp_path / "servers.json").read_text()) == {
            f"{server.api_base}/chat/completions|m": "grammar"
        }
        probes = len(server.requests) - 1
        with _policy(server, tmp_path) as again:  # another run: the cached way, no probe
            again.generate([_request()])
            assert again.served_decoding().endswith("(cached probe)")
        assert len(server.requests) == probes + 2


def test_a_choice_server_gets_the_list(tmp_path: Path) -> None:
    with StubServer(Server("structured_outputs")) as server:
        with _policy(server, tmp_path) as policy:
            assert policy.generate([_request()])[0].text == "Clicked on link 2"
        assert policy.decoding_mode() == "choice"
        assert server.requests[-1]["structured_outputs"]["choice"][0] == "Clicked on link 0"


@pytest.mark.parametrize("strict", [False, True])
def test_a_server_with_no_way_gets_the_nearest_command(tmp_path: Path, strict: bool) -> None:
    # ``strict``: unknown fields refused with 422, as transformers serve does
    with StubServer(Server(None, strict=strict, free="Clicked on link 1\nmore")) as server:
        with _policy(server, tmp_path) as policy:
            assert policy.generate([_request()])[0].text == "Clicked on link 1"
            server.responder = Server(None, strict=strict, free="Search something else")
            assert policy.generate([_request()])[0].text == "Clicked on link 0"
            assert policy.off_list == 1
            assert "nearest (probe; 1 replies mapped to the nearest)" in policy.served_decoding()
        last = server.requests[-1]
        assert not {"grammar", "structured_outputs", "response_format"} & set(last)


def test_a_forced_way_is_not_probed_and_a_server_that_changed_falls_back(tmp_path: Path) -> None:
    with StubServer(Server(None, free='"Clicked on link 1"')) as server:
        with _policy(server, tmp_path, decoding="json") as policy:
            assert policy.generate([_request()])[0].text == "Clicked on link 1"
        assert not any(_is_probe(b) for b in server.requests)
        assert "response_format" in server.requests[0]
    # cached as grammar, but the server behind the URL now refuses the field
    with StubServer(Server(None, strict=True, free="Clicked on link 2")) as server:
        key = f"{server.api_base}/chat/completions|m"
        ModeCache(tmp_path / "servers.json").put(key, "grammar")
        with _policy(server, tmp_path) as policy:
            assert policy.generate([_request()])[0].text == "Clicked on link 2"
            assert policy.decoding_mode() == "nearest"
        assert ModeCache(tmp_path / "servers.json").get(key) is None  # probed next run
    with pytest.raises(ModelError, match="unknown server decoding"):
        OpenAIPolicy("m", api_base="http://127.0.0.1:9", decoding="regex")


def test_a_grammar_that_is_not_listable_keeps_the_free_path(tmp_path: Path) -> None:
    search = CommandConstraint([], "", kinds={"Search"})
    with StubServer(Server("grammar", free="Search capital of Mali")) as server:
        with _policy(server, tmp_path) as policy:
            assert policy.generate([_request(search)])[0].text == "Search capital of Mali"
        assert not any(_is_probe(b) for b in server.requests)  # nothing listed: no probe
        assert "grammar" not in server.requests[0]


def test_a_down_server_is_an_error_not_a_probe_result(tmp_path: Path) -> None:
    policy = _policy_at("http://127.0.0.1:9/v1", tmp_path)
    with pytest.raises(ModelError, match="connection failed"):
        policy.generate([_request()])
    key = "http://127.0.0.1:9/v1/chat/completions|m"
    assert ModeCache(tmp_path / "servers.json").get(key) is None


def _policy_at(api_base: str, cache: Path) -> OpenAIPolicy:
    modes = ModeCache(cache / "servers.json")
    return OpenAIPolicy("m", api_base=api_base, backoff=0.01, retries=0, timeout=2, modes=modes)
