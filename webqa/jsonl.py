"""Reading a JSON-lines file a person or a tool wrote (comparisons, demonstrations,
question rows): each non-blank line as JSON with its line number, and every problem one
``InputError`` naming the file and the line. Bounded: a line longer than
``max_line_bytes`` is refused before it is decoded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from webqa.errors import InputError, open_input

MAX_LINE_BYTES = 64 << 20  # the longest line read by default


def read_jsonl(path: str | Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, Any]]:
    """Each non-blank line of ``path`` as JSON, with its line number (1-based)."""
    path = Path(path)
    with open_input(path, "JSONL file") as f:
        number = 0
        while raw := f.readline(max_line_bytes + 1):
            number += 1
            if len(raw) > max_line_bytes:
                raise InputError(f"{path} line {number}: longer than {max_line_bytes:,} bytes")
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise InputError(f"{path} line {number}: not valid UTF-8") from None
            except (ValueError, RecursionError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else "nested too deeply"
                raise InputError(f"{path} line {number}: not valid JSON ({reason})") from None
