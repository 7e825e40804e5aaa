"""Holding a model behind a server to a list of admissible commands.

A local model decodes each guided browsing command under its grammar
(``CommandConstraint``). Where that grammar admits a list of whole commands (open a
result, quote one of a passage's spans, answer, go back: ``CommandConstraint.choices``),
a served model is held to the list by what its server offers, found by a probe the
first time a server is used (cached in the data directory, ``servers.json``):

- ``grammar``: a GBNF grammar in the request's ``grammar`` field (llama.cpp's server,
  llama-cpp-python's): the server decodes under it, as webqa does locally.
- ``choice``: vLLM's structured outputs (``structured_outputs: {"choice": [...]}``).
- ``json``: ``response_format`` with a JSON schema whose string is one of the list
  (Ollama, vLLM, hosted APIs): the reply is that JSON string.
- ``nearest``: any server: the model answers freely and its reply is taken if it is on
  the list, else the command on the list nearest to it (the same kind of command, the
  closest text: "Quote: <what it wrote>" becomes the admissible quote most like it).

A probe asks the server for a reply that only a working constraint produces (the one
string of a one-item list, which no model writes unprompted); a server that ignores an
unknown field, or refuses it (400/422), fails that probe and the next way is tried;
``nearest`` needs no probe. A reply that is not on the list under a probed way (a server
that changed behind the same URL) is mapped as ``nearest`` maps it and the probe runs
again next time.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from webqa.paths import cache_file, read_json_object, write_json_object

MODES = ("grammar", "choice", "json", "nearest")
PROBED = ("grammar", "choice", "json")  # tried in this order; nearest needs no probe
CACHE_FILE = "servers.json"
PROBE_TEXT = "zq7 webqa probe"  # what a constrained probe must answer, word for word
MAX_COMPARED_CHARS = 600  # nearest compares this much of a reply and of each command


def gbnf(choices: Sequence[str]) -> str:
    """A GBNF grammar whose root is exactly one of ``choices``."""
    return "root ::= " + " | ".join(_literal(c) for c in choices) + "\n"


def _literal(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def request_fields(mode: str, choices: Sequence[str]) -> dict[str, Any]:
    """The chat completion request's fields that hold its reply to ``choices``."""
    if mode == "grammar":
        return {"grammar": gbnf(choices)}
    if mode == "choice":
        return {"structured_outputs": {"choice": list(choices)}}
    if mode == "json":
        schema = {"type": "string", "enum": list(choices)}
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "command", "strict": True, "schema": schema},
            }
        }
    return {}


def reply_text(mode: str, text: str) -> str:
    """The command in a reply made under ``mode`` (a JSON string under ``json``)."""
    if mode == "json":
        try:
            value = json.loads(text)
        except ValueError:
            return text.strip()
        return value if isinstance(value, str) else text.strip()
    return text


def nearest(reply: str, choices: Sequence[str]) -> str:
    """The command of ``choices`` nearest to ``reply``: itself if listed; else among the
    commands of the kind the reply begins with (all, if none), the one whose text is most
    like the reply's, the earliest of equals (the grammar's order: results in order, a
    passage's shortest quote first)."""
    if not choices:
        raise ValueError("nearest: no commands to choose from")
    line = reply.strip()
    if line in choices:
        return line
    kind = _kind_of(line)
    same = [c for c in choices if _kind_of(c) == kind] or list(choices)
    if len(same) == 1:
        return same[0]
    said = line[:MAX_COMPARED_CHARS].casefold()
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(said)
    best, best_score = same[0], -1.0
    for choice in same:
        matcher.set_seq1(choice[:MAX_COMPARED_CHARS].casefold())
        score = matcher.ratio()
        if score > best_score:
            best, best_score = choice, score
    return best


def _kind_of(command: str) -> str:
    """A command's kind, loosely (a reply may be a command's start, or a near miss)."""
    head = command.split(":", 1)[0].split(" ", 1)[0].casefold()
    if head.startswith("click"):
        return "click"
    if command.startswith("End: Answer"):
        return "answer"
    return head


def probe_body(
    model: str, fields: dict[str, Any] | None = None, max_tokens: int = 16
) -> dict[str, Any]:
    """A probe's request: a greeting, greedy, with ``fields`` (a way to hold the reply)."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        **(fields or {}),
    }


# sends a request body; returns the reply, or None where the server refused it
Post = Callable[[dict[str, Any]], "dict[str, Any] | None"]


def probe(post: Post, content: Callable[[dict[str, Any]], str], model: str) -> str:
    """The first of ``PROBED`` the server behind ``post`` honours, else "nearest"
    (``content`` reads a reply's text)."""
    for mode in PROBED:
        reply = post(probe_body(model, request_fields(mode, [PROBE_TEXT])))
        if reply is not None and reply_text(mode, content(reply)).strip() == PROBE_TEXT:
            return mode
    return "nearest"


class ModeCache:
    """Which way each server holds its replies, kept in ``servers.json`` in the data
    directory (keyed by the chat URL and model), so that a probe runs once per server."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path

    def path(self) -> Path | None:
        return self._path if self._path is not None else cache_file(CACHE_FILE)

    def get(self, key: str) -> str | None:
        mode = read_json_object(self.path()).get(key)
        return mode if mode in MODES else None

    def put(self, key: str, mode: str | None) -> None:
        path = self.path()
        if path is None:
            return
        data = read_json_object(path)
        if mode is None:
            data.pop(key, None)
        else:
            data[key] = mode
        write_json_object(path, data)
