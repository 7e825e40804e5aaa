"""One error tree for webqa. Front doors turn these into one clear line and an exit code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


class WebQAError(Exception):
    """Base class of every error webqa raises on purpose."""


class InputError(WebQAError):
    """Bad input from a person: an empty question, a malformed line in a question file."""


class CorpusError(WebQAError):
    """A corpus (ZIM file or source folder) is missing, unreadable or corrupt."""


class FetchError(WebQAError):
    """A page could not be fetched (network error, bad status, too large, wrong type)."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class BlockedURLError(FetchError):
    """The URL's scheme or resolved address is forbidden by the security policy."""


class SearchError(WebQAError):
    """A search backend failed (after retries) or is misconfigured."""


class ModelError(WebQAError):
    """A policy or reward model could not be loaded or failed to generate."""


class TemplateError(WebQAError):
    """A prompt template is missing or a template variable was not supplied."""


class StorageError(WebQAError):
    """A folder or file webqa must write (the data directory, demonstrations) cannot be."""


def os_reason(error: BaseException) -> str:
    """Why an OS call failed, as a person reads it: an OSError's reason ("Permission
    denied"), else the error's first line, else its type's name."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def open_input(path: Path, what: str) -> BinaryIO:
    """``path`` opened to read its bytes, or InputError in one line naming it: no such
    file, a folder (not a ``what``), or the reason it cannot be read."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a {what}") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read it: {os_reason(error)}") from None


def os_error_message(error: OSError) -> str:
    """An OSError in one line: its reason and the path(s) it concerns."""
    reason = os_reason(error)
    if error.filename is None:
        return reason
    name = error.filename
    where = os.fsdecode(name) if isinstance(name, bytes) else str(name)
    if error.filename2 is not None:
        where += f" -> {error.filename2}"
    return f"{reason}: {where}"


def one_line(text: str, *, first_only: bool = False) -> str:
    """``text`` on one line: its first non-blank line, or all of them joined."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:1] if first_only else lines)


def error_line(error: Exception, *, debug: bool) -> tuple[str, int]:
    """The one line and exit code a front door gives ``error``: a WebQAError's message or
    an OSError's reason and path exit 1; anything else is unexpected and exits 2 (with a
    pointer to --debug unless ``debug``)."""
    if isinstance(error, WebQAError):
        return one_line(str(error)) or type(error).__name__, 1
    if isinstance(error, OSError):
        return os_error_message(error), 1
    message = f"unexpected error: {type(error).__name__}"
    first = one_line(str(error), first_only=True)
    message += f": {first}" if first else ""
    if not debug:
        message += "; run with --debug for the traceback"
    return message, 2
