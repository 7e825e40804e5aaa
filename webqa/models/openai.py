"""A policy served by any OpenAI-compatible ``/v1/chat/completions`` endpoint.

vLLM, llama.cpp's server, Ollama and hosted APIs all speak it. Requests in a batch are
sent concurrently from a thread pool; one semaphore per policy caps the requests in
flight at ``max_concurrency`` even when several threads share the policy.

What a server cannot do for us, we do here:
- A constraint that lists its whole commands (the guided grammar's steps:
  ``CommandConstraint.choices``) holds the reply to that list the way the server allows
  (``webqa.models.server_decoding``: a GBNF grammar, vLLM's choice, a JSON schema, else
  the listed command nearest to a free reply), probed once per server; ``decoding``
  forces one way. Other constraints (a free Search, WebGPT's command set) cannot be
  enforced server-side in general, so the reply's first non-blank line is taken; if it
  is not a complete command the request is retried once at temperature 0.7 and that
  second line is returned whatever it is (the caller counts an invalid command).
- Reasoning models' ``<think>...</think>`` blocks are removed, as is an unclosed leading
  ``<think>`` block (the reply ran out of tokens while thinking) and everything up to a
  stray ``</think>`` (the chat template opened the block inside the prompt).
- Stop strings are also applied locally, in case a server ignores them.

Failures: 429, 5xx, connection errors and timeouts are retried under webqa's one retry
policy (``webqa.retry``: exponential backoff, ``Retry-After`` honoured up to 30 s;
``retries`` retries after the first try); then, or at once for other 4xx answers, a
ModelError with one line: the URL, the status and an excerpt of the server's message.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from webqa.errors import ModelError
from webqa.models import server_decoding
from webqa.models.base import Chat, Generation, GenerationRequest
from webqa.models.server_decoding import ModeCache
from webqa.retry import GaveUp, Retryable, RetryPolicy, raise_if_retryable
from webqa.text import first_line, strip_think
from webqa.web.base import Closing

API_KEY_VARS = ("WEBQA_API_KEY", "OPENAI_API_KEY")  # looked up in this order
CONSTRAINT_RETRY_TEMPERATURE = 0.7
YES_TOKENS = frozenset({"yes"})
NO_TOKENS = frozenset({"no"})
MAX_BACKOFF_S = 30.0


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s:
            at = text.find(s)
            if at != -1:
                cut = min(cut, at)
    return text[:cut]


def chat_url(api_base: str) -> str:
    """The chat completions URL for a base such as ``http://host:8000/v1``.

    As in the OpenAI SDK, the base includes the API version and ``/chat/completions`` is
    appended; a bare ``scheme://host[:port]`` gets ``/v1`` first.
    """
    base = api_base.rstrip("/")
    if not urlsplit(base).path:
        base += "/v1"
    return base + "/chat/completions"


@dataclass(frozen=True)
class Usage:
    """Totals over a policy's life (tokens as the server reported them, else estimated)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _StatusError(ModelError):
    """The server answered with an error status (kept to tell 400s from the rest)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class OpenAIPolicy(Closing):
    """A Policy over an OpenAI-compatible chat completions server."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        max_concurrency: int = 8,
        backoff: float = 1.0,  # first retry waits this long, then doubles (capped)
        transport: httpx.BaseTransport | None = None,  # for tests
        decoding: str = "auto",  # "auto" (probed) or one of server_decoding.MODES
        modes: ModeCache | None = None,  # where probed ways are kept (data directory)
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if decoding != "auto" and decoding not in server_decoding.MODES:
            known = ", ".join(("auto", *server_decoding.MODES))
            raise ModelError(f"unknown server decoding {decoding!r} (known: {known})")
        self.model = model
        self.name = f"openai:{model}"
        self.url = chat_url(api_base)
        self.timeout = timeout
        self.retry = RetryPolicy(max(0, retries), backoff, MAX_BACKOFF_S)
        self.max_concurrency = max_concurrency
        key = api_key or next((os.environ[v] for v in API_KEY_VARS if os.environ.get(v)), None)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=max_concurrency),
        )
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._usage_lock = threading.Lock()
        self._usage = Usage()
        self._logprobs_supported = True
        self.decoding = decoding
        self._modes = modes or ModeCache()
        self._mode: str | None = None  # the way listed commands are held, once known
        self.mode_source = ""  # how it was settled: "forced", "probe" or "cached probe"
        self._mode_lock = threading.Lock()
        self.off_list = 0  # replies not on their list, mapped to the nearest command

    # -- Policy ---------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Complete every request concurrently; results in request order."""
        return self._map(self._generate_one, requests)

    def yes_probability(self, chats: Sequence[Chat]) -> list[float]:
        """P(yes) / (P(yes) + P(no)) from the first reply token's top-20 logprobs.

        Token variants (" Yes", "yes", "YES", ...) are summed. Without logprobs (the
        server lacks them or neither word is in the top 20) the 1-token reply decides:
        1.0 for yes, 0.0 for no, 0.5 for anything else.
        """
        return self._map(self._yes_one, chats)

    # -- lifecycle ------------------------------------------------------------

    @property
    def usage(self) -> Usage:
        with self._usage_lock:
            return self._usage

    def close(self) -> None:
        self._client.close()

    # -- internals ------------------------------------------------------------

    def _map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        if not items:
            return []
        if len(items) == 1:
            return [fn(items[0])]
        workers = min(self.max_concurrency, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webqa-openai") as pool:
            return list(pool.map(fn, items))

    def decoding_mode(self) -> str:
        """How this server holds a reply to a list of commands (see
        ``webqa.models.server_decoding``): forced, cached, or probed now."""
        with self._mode_lock:
            if self._mode is None:
                key = self._mode_key
                if self.decoding != "auto":
                    self._mode, self.mode_source = self.decoding, "forced"
                elif cached := self._modes.get(key):
                    self._mode, self.mode_source = cached, "cached probe"
                else:
                    # a plain request first: a server that is down says so
                    self._post(server_decoding.probe_body(self.model, max_tokens=4))
                    self._mode = server_decoding.probe(self._refusable, _content, self.model)
                    self.mode_source = "probe"
                    self._modes.put(key, self._mode)
            return self._mode

    @property
    def _mode_key(self) -> str:
        """The server and model a probed way is kept for (in ``servers.json``)."""
        return f"{self.url}|{self.model}"

    def served_decoding(self) -> str:
        """How this policy's listed commands were held, for --verbose."""
        if self._mode is None:
            return "free command set (WebGPT's)" if self.decoding == "auto" else self.decoding
        strays = f"; {self.off_list} replies mapped to the nearest" if self.off_list else ""
        return f"guided commands held by {self._mode} ({self.mode_source}{strays})"

    def _refusable(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """One try of ``body``: the reply, or None where the server refused it."""
        try:
            return self._post_once(body)
        except (Retryable, ModelError):
            return None

    def _choose(self, request: GenerationRequest, choices: Sequence[str]) -> Generation:
        """A reply held to ``choices`` (see ``decoding_mode``)."""
        mode = self.decoding_mode()
        # room for the longest command (about two characters a token at worst); a free
        # reply (nearest) is only read as far as it is compared
        longest = max(len(c) for c in choices)
        if mode == "nearest":
            longest = min(longest, server_decoding.MAX_COMPARED_CHARS)
        budget = max(request.max_new_tokens, longest // 2 + 8)
        fields = server_decoding.request_fields(mode, choices)
        try:
            generation = self._complete(request, request.temperature, fields, budget)
        except _StatusError as exc:
            if mode == "nearest" or exc.status not in (400, 404, 422):
                raise
            self._forget_mode()  # the server behind this URL changed: probe next run
            mode = "nearest"
            generation = self._complete(request, request.temperature, {}, budget)
        text = first_line(server_decoding.reply_text(mode, generation.text))
        if text not in choices:
            if mode != "nearest":
                self._forget_mode()
            with self._usage_lock:
                self.off_list += 1
            text = server_decoding.nearest(text, choices)
        return Generation(text, generation.tokens, generation.prompt_tokens)

    def _forget_mode(self) -> None:
        with self._mode_lock:
            if self.mode_source != "forced":
                self._modes.put(self._mode_key, None)
                self._mode, self.mode_source = "nearest", "fallback"

    def _generate_one(self, request: GenerationRequest) -> Generation:
        constraint = request.constraint
        listed = getattr(constraint, "choices", None)
        choices = listed() if callable(listed) else None
        if choices:
            return self._choose(request, choices)
        generation = self._complete(request, request.temperature)
        if constraint is None:
            return generation
        if getattr(constraint, "multiline", False):  # a whole answer, not a command line
            return generation
        line = first_line(generation.text)
        if constraint.complete(line):
            return Generation(line, generation.tokens, generation.prompt_tokens)
        retry = self._complete(request, CONSTRAINT_RETRY_TEMPERATURE)
        return Generation(
            first_line(retry.text),
            generation.tokens + retry.tokens,
            generation.prompt_tokens + retry.prompt_tokens,
        )

    def _complete(
        self,
        request: GenerationRequest,
        temperature: float,
        fields: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> Generation:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _messages(request.chat),
            "max_tokens": max_tokens or request.max_new_tokens,
            "temperature": temperature,
            **(fields or {}),
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        reply = self._post(body)
        raw = _content(reply)
        text = cut_at_stop(strip_think(raw), request.stop)
        prompt_tokens, tokens = self._count(reply, request.chat, raw)
        return Generation(text=text, tokens=tokens, prompt_tokens=prompt_tokens)

    def _yes_one(self, chat: Chat) -> float:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _messages(chat),
            "max_tokens": 1,
            "temperature": 0.0,
        }
        reply: dict[str, Any] | None = None
        if self._logprobs_supported:
            try:
                reply = self._post({**body, "logprobs": True, "top_logprobs": 20})
            except _StatusError as exc:
                if exc.status not in (400, 422):
                    raise
                self._logprobs_supported = False  # the server refuses logprobs: use text
        if reply is None:
            reply = self._post(body)
        raw = _content(reply)
        self._count(reply, chat, raw)
        p = _yes_from_logprobs(reply)
        if p is not None:
            return p
        word = re.sub(r"[^a-z]", "", strip_think(raw).lower())
        if word.startswith("yes"):
            return 1.0
        if word.startswith("no"):
            return 0.0
        return 0.5

    def _count(self, reply: dict[str, Any], chat: Chat, raw: str) -> tuple[int, int]:
        usage = reply.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            prompt = int(usage.get("prompt_tokens") or 0)
            completion = int(usage["completion_tokens"])
        else:  # rough estimate: about four characters a token
            prompt = sum(len(m.content) for m in chat) // 4
            completion = math.ceil(len(raw) / 4)
        with self._usage_lock:
            u = self._usage
            self._usage = Usage(
                u.requests + 1, u.prompt_tokens + prompt, u.completion_tokens + completion
            )
        return prompt, completion

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.retry.call(lambda: self._post_once(body))
        except GaveUp as stop:
            tries = "1 try" if stop.attempts == 1 else f"{stop.attempts} tries"
            raise ModelError(f"model server {self.url} {stop} ({tries})") from None

    def _post_once(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            with self._slots:
                response = self._client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise Retryable(f"timed out after {self.timeout:g} s") from exc
        except httpx.TransportError as exc:
            problem = f"connection failed ({type(exc).__name__}: {_excerpt(str(exc))})"
            raise Retryable(problem) from exc
        status = response.status_code
        if status == 200:
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict) or not data.get("choices"):
                raise ModelError(
                    f"{self.url} answered 200 but not a chat completion: {_excerpt(response.text)}"
                )
            return data
        problem = f"answered {status}: {_server_message(response)}"
        raise_if_retryable(status, problem, response.headers)
        raise _StatusError(f"model server {self.url} {problem}", status)


def _messages(chat: Chat) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in chat]


def _content(reply: dict[str, Any]) -> str:
    try:
        content = reply["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ModelError(f"malformed chat completion: {_excerpt(repr(reply))}") from None
    return content if isinstance(content, str) else ""


def _yes_from_logprobs(reply: dict[str, Any]) -> float | None:
    """P(yes)/(P(yes)+P(no)) over the first token's alternatives, or None if unknown."""
    try:
        first = reply["choices"][0]["logprobs"]["content"][0]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(first, dict):
        return None
    candidates = first.get("top_logprobs") or [first]
    seen: set[str] = set()
    yes = no = 0.0
    for item in candidates:
        if not isinstance(item, dict):
            continue
        token, logprob = item.get("token"), item.get("logprob")
        if not isinstance(token, str) or not isinstance(logprob, int | float) or token in seen:
            continue
        seen.add(token)
        word = token.strip().strip("▁Ġ").lower()
        if word in YES_TOKENS:
            yes += math.exp(logprob)
        elif word in NO_TOKENS:
            no += math.exp(logprob)
    if yes + no <= 0.0:
        return None
    return yes / (yes + no)


def _server_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return _excerpt(response.text) or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and error.get("message"):
            return _excerpt(str(error["message"]))
        if isinstance(error, str):
            return _excerpt(error)
    return _excerpt(response.text)


def _excerpt(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
