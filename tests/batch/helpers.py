"""For batch tests: the fake policy's rules over HTTP, for the stub server."""

from __future__ import annotations

from typing import Any

from tests.fakes import scripted_reply
from tests.models.stub_server import Reply


def stub_responder(body: dict[str, Any]) -> Reply:
    """For tests.models.stub_server: the fake policy's rules (``scripted_reply``)."""
    return Reply(
        scripted_reply(body["messages"], body.get("seed"), float(body.get("temperature", 0)))
    )
