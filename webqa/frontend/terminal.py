"""What the terminal shows of untrusted text: control characters (ANSI escapes among
them) and lone surrogates written as escapes, so that a question, an id or a logged
answer shows as written and can never drive the terminal. Used by every front door
that prints such text."""

from __future__ import annotations

import re

from rich.markup import escape

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes among them) and lone surrogates
    written as escapes, so it shows as written and prints on any terminal."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


def shown(text: object) -> str:
    """``text`` made printable (see ``printable``) and escaped for rich markup."""
    return escape(printable(str(text)))
