"""OpenAIPolicy against a scripted server on 127.0.0.1 (no network)."""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

import httpx
import pytest

from tests.models.stub_server import Reply, StubServer
from webqa.errors import ModelError
from webqa.models.base import GenerationRequest, Message, Policy
from webqa.models.openai import OpenAIPolicy, chat_url, cut_at_stop, first_line, strip_think


def chat(text: str) -> list[Message]:
    return [Message("system", "You answer."), Message("user", text)]


def make(server: StubServer, **options: Any) -> OpenAIPolicy:
    options = {"backoff": 0.01, "timeout": 5.0, **options}
    return OpenAIPolicy("stub-model", api_base=server.api_base, **options)


class Commands:
    """A constraint that accepts "Search <words>" and "Top"."""

    def allows(self, text: str) -> bool:
        return "Search ".startswith(text[:7]) or "Top".startswith(text)

    def complete(self, text: str) -> bool:
        return (text.startswith("Search ") and len(text) > 7) or text == "Top"


def test_completion_sends_the_request_and_reads_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("WEBQA_API_KEY", "sk-test")
    with StubServer(lambda body: Reply("Canberra.", usage=(12, 4))) as server:
        with make(server) as policy:
            assert isinstance(policy, Policy)
            request = GenerationRequest(
                chat("Capital of Australia?"),
                max_new_tokens=32,
                temperature=0.5,
                stop=("\n\n",),
                seed=7,
            )
            [generation] = policy.generate([request])
            assert policy.usage.requests == 1
            assert policy.usage.completion_tokens == 4
    assert (generation.text, generation.tokens, generation.prompt_tokens) == ("Canberra.", 4, 12)
    assert server.requests == [
        {
            "model": "stub-model",
            "messages": [
                {"role": "system", "content": "You answer."},
                {"role": "user", "content": "Capital of Australia?"},
            ],
            "max_tokens": 32,
            "temperature": 0.5,
            "stop": ["\n\n"],
            "seed": 7,
        }
    ]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert policy.name == "openai:stub-model"


def test_no_key_sends_no_authorization_and_tokens_are_estimated_without_usage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("WEBQA_API_KEY", raising=False)
    with StubServer(lambda body: Reply("12345678", usage=None)) as server:
        with make(server) as policy:
            [generation] = policy.generate([GenerationRequest(chat("x"))])
    assert "Authorization" not in server.headers[0]
    assert "seed" not in server.requests[0] and "stop" not in server.requests[0]
    assert generation.tokens == 2  # about four characters a token


def test_results_keep_request_order_and_concurrency_is_capped() -> None:
    with StubServer() as server:
        server.delay = 0.3
        with make(server, max_concurrency=4) as policy:
            started = time.monotonic()
            out = policy.generate([GenerationRequest(chat(f"q{i}")) for i in range(8)])
            elapsed = time.monotonic() - started
    assert [g.text for g in out] == [f"q{i}" for i in range(8)]
    assert server.max_in_flight == 4
    assert elapsed < 8 * 0.3 * 0.6  # two waves of four, not eight one by one


def test_500_then_success_is_retried() -> None:
    with StubServer(lambda body: Reply("fine")) as server:
        server.fail_first = 2
        with make(server, retries=3) as policy:
            [generation] = policy.generate([GenerationRequest(chat("x"))])
    assert generation.text == "fine"
    assert len(server.requests) == 3


def test_persistent_500_raises_a_one_line_model_error() -> None:
    with StubServer() as server:
        server.fail_first = 100
        with make(server, retries=2) as policy, pytest.raises(ModelError) as info:
            policy.generate([GenerationRequest(chat("x"))])
    assert str(info.value) == (
        f"model server {server.api_base}/chat/completions answered 500: scripted failure (3 tries)"
    )
    assert len(server.requests) == 3


@pytest.mark.parametrize("date", [False, True])
def test_retry_after_is_honoured_as_seconds_or_an_http_date(date: bool) -> None:
    """The one retry policy (webqa.retry): an HTTP date is waited for too (it used to be
    ignored for the backoff's 0.01 s)."""
    retry_after = email.utils.formatdate(time.time() + 3, usegmt=True) if date else "1"
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        if len(sent) == 1:
            return httpx.Response(429, headers={"Retry-After": retry_after}, json={})
        return httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]})

    options: dict[str, Any] = {"backoff": 0.01, "transport": httpx.MockTransport(handler)}
    with OpenAIPolicy("m", api_base="http://model.test/v1", **options) as policy:
        [generation] = policy.generate([GenerationRequest(chat("x"))])
    assert generation.text == "ok"
    assert len(sent) == 2 and 0.95 <= sent[1] - sent[0] < 3.5  # a date: 2-3 s from now


def test_a_client_error_is_not_retried() -> None:
    with StubServer(lambda body: Reply(status=404, error="model 'stub-model' not found")) as server:
        with make(server) as policy, pytest.raises(ModelError, match="answered 404: model"):
            policy.generate([GenerationRequest(chat("x"))])
    assert len(server.requests) == 1


def test_a_hanging_server_times_out_within_bounded_time() -> None:
    with StubServer(lambda body: Reply("late", delay=10.0)) as server:
        with make(server, timeout=0.3, retries=1) as policy:
            started = time.monotonic()
            with pytest.raises(ModelError, match=r"timed out after 0\.3 s \(2 tries\)"):
                policy.generate([GenerationRequest(chat("x"))])
            assert time.monotonic() - started < 2.0


def test_an_unreachable_server_raises_model_error() -> None:
    with StubServer() as server:
        base = server.api_base
    policy = OpenAIPolicy("m", api_base=base, retries=1, backoff=0.01, timeout=1.0)
    with pytest.raises(ModelError, match="connection failed"):
        policy.generate([GenerationRequest(chat("x"))])


def test_think_blocks_are_stripped() -> None:
    replies = {
        "a": "<think>\nlet me see\n</think>\n\nCanberra.",
        "b": "<think>still thinking and ran out of tok",
        "c": "the template opened it</think>Paris.",
        "d": "A <THINK>x</THINK>B",
    }
    with StubServer(lambda body: Reply(replies[body["messages"][-1]["content"]])) as server:
        with make(server) as policy:
            out = policy.generate([GenerationRequest(chat(k)) for k in "abcd"])
    assert [g.text for g in out] == ["Canberra.", "", "Paris.", "A B"]


def test_helpers() -> None:
    assert strip_think("  <think>a</think> <think>b</think>  x") == "x"
    assert first_line("\n\n  Search cats  \nmore") == "Search cats"
    assert cut_at_stop("one\n\ntwo END three", ["END", "\n\n"]) == "one"
    assert chat_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_url("https://x.ai/v1beta/openai") == "https://x.ai/v1beta/openai/chat/completions"


def test_constraint_takes_the_first_line_and_retries_once_at_0_7() -> None:
    scripts = {
        "good": ["\nSearch cats\nand more"],
        "bad": ["I think...", "Top"],
        "worse": ["?", "!"],
    }

    def responder(body: dict[str, Any]) -> Reply:
        return Reply(scripts[body["messages"][-1]["content"]].pop(0), usage=(5, 2))

    with StubServer(responder) as server:
        with make(server) as policy:
            requests = [GenerationRequest(chat(k), constraint=Commands()) for k in scripts]
            out = policy.generate(requests)
    assert [g.text for g in out] == ["Search cats", "Top", "!"]
    assert [g.tokens for g in out] == [2, 4, 4]
    temperatures = sorted(r["temperature"] for r in server.requests)
    assert temperatures == [0.0, 0.0, 0.0, 0.7, 0.7]


def test_yes_probability_from_logprobs() -> None:
    logprobs = {
        "even": ((" Yes", math.log(0.3)), ("yes", math.log(0.2)), ("No", math.log(0.5))),
        "sure": (("yes", 0.0),),
        "other": (("Maybe", math.log(0.9)), ("no", math.log(0.05)), ("YES", math.log(0.05))),
    }

    def responder(body: dict[str, Any]) -> Reply:
        return Reply("x", top_logprobs=logprobs[body["messages"][-1]["content"]])

    with StubServer(responder) as server:
        with make(server) as policy:
            p = policy.yes_probability([chat("even"), chat("sure"), chat("other")])
    assert p == pytest.approx([0.5, 1.0, 0.5])
    assert all(r["max_tokens"] == 1 and r["logprobs"] is True for r in server.requests)
    assert all(r["top_logprobs"] == 20 for r in server.requests)


def test_yes_probability_falls_back_to_the_reply_text() -> None:
    texts = {"a": "Yes", "b": " no.", "c": "Perhaps", "d": "<think>"}
    with StubServer(lambda body: Reply(texts[body["messages"][-1]["content"]])) as server:
        with make(server) as policy:
            assert policy.yes_probability([chat(k) for k in "abcd"]) == [1.0, 0.0, 0.5, 0.5]


def test_yes_probability_without_logprobs_support_drops_them() -> None:
    def responder(body: dict[str, Any]) -> Reply:
        if body.get("logprobs"):
            return Reply(status=400, error="logprobs are not supported")
        return Reply("yes")

    with StubServer(responder) as server:
        with make(server) as policy:
            assert policy.yes_probability([chat("a")]) == [1.0]
            assert policy.yes_probability([chat("b")]) == [1.0]
    assert ["logprobs" in r for r in server.requests] == [True, False, False]
