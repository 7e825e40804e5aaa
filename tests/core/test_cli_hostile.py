"""Hostile and careless input to the command line (issue 11): one line, never a traceback,
and a `webqa browse` session is saved whatever goes wrong, or the user is told before
typing that it cannot be.

Cases: 2 (browse part), 11, 15, 16 (part), and the top-level handler of `webqa.cli.main`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.conftest import PAGES
from tests.fakes import FakeBackends
from tests.hostile_server import HostileServer
from webqa import demos as demos_module
from webqa.cli import main
from webqa.web.zimweb import ZimWeb

QUESTION = "What is the capital of Burkina Faso?"
GOOD = b"Search capital Burkina Faso\nClicked on link 0\nQuote: Its capital is Ouagadougou.\n"


def stdin_bytes(
    monkeypatch: pytest.MonkeyPatch, data: bytes, errors: str = "surrogateescape"
) -> io.TextIOWrapper:
    """Piped stdin as Python opens it: a UTF-8 text stream over bytes.

    ``surrogateescape`` is what Python uses under the C/POSIX (and C.UTF-8) locale,
    ``strict`` what it uses under e.g. en_US.UTF-8.
    """
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors=errors)
    monkeypatch.setattr("sys.stdin", stream)
    return stream


def saved(home: Path) -> list[dict]:
    path = home / "demonstrations.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def one_error_line(err: str, command: str = "browse") -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"webqa {command}:")]
    assert len(lines) == 1, err
    return lines[0]


# -- the top-level handler ------------------------------------------------------------


BOOM = "boom happened\nsecond line of the message"


def _explode(*args: object, **kwargs: object) -> ZimWeb:
    raise ZeroDivisionError(BOOM)


def test_unexpected_error_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], zim: Path
) -> None:
    exploding = FakeBackends(web=ZeroDivisionError(BOOM))
    assert main(["search", "x", "--zim", str(zim)], exploding) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "webqa search: unexpected error: ZeroDivisionError: boom happened; "
        "run with --debug for the traceback"
    )
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "search", "x"],
        ["search", "x", "--debug"],
        ["corpus", "build", "--debug", "folder", "-o", "x.zim"],
        ["search", "x"],  # with WEBQA_DEBUG=1
    ],
)
def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    monkeypatch.setattr("webqa.web.corpus.build_from_folder", _explode)
    if "--debug" not in argv:
        monkeypatch.setenv("WEBQA_DEBUG", "1")
    assert main(argv, FakeBackends(web=ZeroDivisionError(BOOM))) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ZeroDivisionError: boom happened" in err


def test_os_errors_are_one_line_naming_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    denied = PermissionError(13, "Permission denied", "/srv/private/thing.zim")
    assert main(["search", "x", "--zim", "whatever.zim"], FakeBackends(web=denied)) == 1
    err = capsys.readouterr().err.strip()
    assert err == "webqa search: Permission denied: /srv/private/thing.zim"


def test_a_real_process_prints_no_traceback(tmp_path: Path, zim: Path) -> None:
    """The whole program, as a user runs it: invalid UTF-8 piped into `webqa browse`."""
    env = {**os.environ, "WEBQA_HOME": str(tmp_path / "home"), "LC_ALL": "C.UTF-8"}
    env.pop("WEBQA_DEBUG", None)
    for encoding in ("utf-8:surrogateescape", "utf-8:strict"):
        env["PYTHONIOENCODING"] = encoding
        done = subprocess.run(
            [sys.executable, "-m", "webqa.cli", "browse", QUESTION, "--zim", str(zim)],
            input=GOOD + b"Find in page: caf\xe9\nEnd: Answer\nOuagadougou [1] caf\xe9.\n",
            capture_output=True,
            env=env,
            timeout=60,
        )
        err = done.stderr.decode("utf-8", "replace")
        assert "Traceback" not in err, err
        assert done.returncode == 1, err
        assert "stdin line 4: not valid UTF-8" in err
    demos = saved(tmp_path / "home")
    assert len(demos) == 2 and {d["answer"] for d in demos} == {"Ouagadougou [1] caf\ufffd."}


# -- case 2: an error in the middle of a session ----------------------------------------


def test_an_error_mid_session_saves_the_session_then_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
) -> None:
    real_fetch = ZimWeb.fetch

    def fetch(self: ZimWeb, url: str) -> object:
        if url.endswith("mali.html"):
            raise ValueError("Invalid IPv6 URL")  # what urlsplit said of href="http://[::1"
        return real_fetch(self, url)

    monkeypatch.setattr(ZimWeb, "fetch", fetch)
    stdin_bytes(monkeypatch, GOOD + b"Clicked on link 0\nEnd: Answer\nNever read.\n")
    assert main(["browse", QUESTION, "--zim", str(zim)]) == 2
    err = capsys.readouterr().err
    line = one_error_line(err)
    assert line == (
        "webqa browse: unexpected error: ValueError: Invalid IPv6 URL; "
        "run with --debug for the traceback"
    )
    [demo] = saved(webqa_home)
    assert demo["end_reason"] == "error" and demo["answer"] == ""
    assert [s["command"] for s in demo["steps"]] == [
        "Search capital Burkina Faso",
        "Clicked on link 0",
        "Quote: Its capital is Ouagadougou.",
        "Clicked on link 0",
    ]
    assert [q["text"] for q in demo["quotes"]] == ["Its capital is Ouagadougou."]
    assert f"saved demonstration {demo['id']}" in err and err.index("saved") < err.index(line)


@pytest.fixture
def hostile_site(hostile: HostileServer) -> HostileServer:
    """The hostile server, with a SearXNG whose one result is a page with a link no URL
    parser accepts (``http://[::1``)."""
    page = (
        "<html><head><title>Burkina Faso</title></head><body><p>Its capital is "
        'Ouagadougou.</p><p><a href="http://[::1">broken</a> and '
        '<a href="/other">other</a></p></body></html>'
    )
    hostile.page("/ipv6-link", page)
    results = {
        "query": "q",
        "results": [{"title": "Burkina Faso", "url": hostile.url("/ipv6-link"), "content": "c"}],
        "unresponsive_engines": [],
    }
    body = json.dumps(results).encode()
    hostile.route(
        "/engine/ipv6-link/search",
        lambda req: req.send(200, body, {"Content-Type": "application/json"}),
    )
    return hostile


def test_a_page_with_an_invalid_ipv6_link_never_loses_the_session(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hostile_site: HostileServer,
    webqa_home: Path,
) -> None:
    script = (
        b"Search capital Burkina Faso\nClicked on link 0\nQuote: Its capital is Ouagadougou.\n"
        b"End: Answer\nOuagadougou [1].\n"
    )
    stdin_bytes(monkeypatch, script)
    engine = hostile_site.engine("ipv6-link")
    args = ["browse", QUESTION, "--searxng", engine, "--allow-private"]
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [demo] = saved(webqa_home)  # saved whether the page renders (page.py) or not
    commands = [s["command"] for s in demo["steps"]]
    assert commands[:2] == ["Search capital Burkina Faso", "Clicked on link 0"]
    if code == 0:  # the renderer skipped the bad link
        assert demo["answer"] == "Ouagadougou [1]." and demo["end_reason"] == "answer"
        assert len(commands) == 4
    else:  # it did not: the session so far is saved, then one line
        assert code == 2 and demo["end_reason"] == "error" and len(commands) == 2
        assert demo["steps"][1]["error"] == "ValueError: Invalid IPv6 URL"
        assert "ValueError: Invalid IPv6 URL" in one_error_line(err)


def test_browse_over_an_engine_with_odd_results(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hostile: HostileServer,
    webqa_home: Path,
) -> None:
    """Wrong types, terminal escapes, a bad IPv6 host and 100,000-character titles."""
    stdin_bytes(monkeypatch, b"Search q\nScrolled down 1\nEnd: Nonsense\n")  # no DNS
    code = main(["browse", QUESTION, "--searxng", hostile.engine("odd"), "--allow-private"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [demo] = saved(webqa_home)
    assert [s["command"] for s in demo["steps"]][:2] == ["Search q", "Scrolled down 1"]
    if code == 2:  # something below the CLI failed: one line, after the save
        assert demo["end_reason"] == "error" and one_error_line(err)
    else:
        assert code in (0, 1) and demo["end_reason"] == "nonsense"


def test_interrupted_session_is_saved(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
) -> None:
    real_fetch = ZimWeb.fetch

    def fetch(self: ZimWeb, url: str) -> object:
        if url.endswith("mali.html"):
            raise KeyboardInterrupt
        return real_fetch(self, url)

    monkeypatch.setattr(ZimWeb, "fetch", fetch)
    stdin_bytes(monkeypatch, GOOD + b"Clicked on link 0\n")
    assert main(["browse", QUESTION, "--zim", str(zim)]) == 130
    assert one_error_line(capsys.readouterr().err) == "webqa browse: interrupted"
    [demo] = saved(webqa_home)
    assert demo["end_reason"] == "interrupted" and len(demo["steps"]) == 4


# -- case 11: invalid UTF-8 on stdin or in the question ---------------------------------


@pytest.mark.parametrize("errors", ["surrogateescape", "strict"])
def test_invalid_utf8_command_is_one_line_and_the_session_is_saved(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
    errors: str,
) -> None:
    script = GOOD[:28] + b"Find in page: caf\xe9 \xff\n" + GOOD[28:] + b"End: Answer\nIt is [1].\n"
    stdin_bytes(monkeypatch, script, errors)
    assert main(["browse", QUESTION, "--zim", str(zim)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        "webqa browse: stdin line 2: not valid UTF-8 (byte 0xe9 at column 18); "
        "skipped, not counted as an action"
    )
    [demo] = saved(webqa_home)
    assert [s["command"] for s in demo["steps"]] == [
        "Search capital Burkina Faso",
        "Clicked on link 0",
        "Quote: Its capital is Ouagadougou.",
        "End: Answer",
    ]
    assert demo["answer"] == "It is [1]." and demo["end_reason"] == "answer"


@pytest.mark.parametrize("errors", ["surrogateescape", "strict"])
def test_invalid_utf8_answer_is_kept_with_replacement_characters(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
    errors: str,
) -> None:
    stdin_bytes(monkeypatch, GOOD + b"End: Answer\nOuagadougou\n[1] is the caf\xe9.\n", errors)
    assert main(["browse", QUESTION, "--zim", str(zim)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("webqa browse: stdin line 6: not valid UTF-8 (byte 0xe9 at column 15)")
    assert "U+FFFD" in line
    [demo] = saved(webqa_home)
    assert demo["answer"] == "Ouagadougou\n[1] is the caf\ufffd."
    assert demo["end_reason"] == "answer"


@pytest.mark.parametrize("errors", ["surrogateescape", "strict"])
def test_invalid_utf8_piped_question_fails_before_anything(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
    errors: str,
) -> None:
    stdin_bytes(monkeypatch, b"Qu\xe9stion?\nEnd: Nonsense\n", errors)
    assert main(["browse", "--zim", str(zim)]) == 1
    captured = capsys.readouterr()
    assert one_error_line(captured.err) == (
        "webqa browse: stdin line 1: the question is not valid UTF-8 (byte 0xe9 at column 3)"
    )
    assert "●Question" not in captured.out
    assert saved(webqa_home) == []


def test_invalid_utf8_question_argument_fails_before_anything(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
) -> None:
    stdin_bytes(monkeypatch, b"End: Nonsense\n")
    question = os.fsdecode(b"Qu\xe9stion?")  # how Python hands over a non-UTF-8 argv
    assert main(["browse", question, "--zim", str(zim)]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        "webqa browse: the question is not valid UTF-8 (byte 0xe9 at column 3)"
    )
    assert saved(webqa_home) == []


def test_ask_refuses_an_invalid_utf8_question_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    question = os.fsdecode(b"Qu\xe9stion?")
    assert main(["ask", question, "--zim", str(tmp_path / "never-opened.zim")]) == 1
    assert one_error_line(capsys.readouterr().err, "ask") == (
        "webqa ask: the question is not valid UTF-8 (byte 0xe9 at column 3)"
    )


def test_an_endless_line_is_skipped_in_bounded_memory(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
) -> None:
    huge = b"Search " + b"x" * 3_000_000 + b"\n"
    stdin_bytes(monkeypatch, GOOD + huge + b"End: Answer\nOuagadougou [1].\n")
    assert main(["browse", QUESTION, "--zim", str(zim)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("webqa browse: stdin line 4: longer than")
    [demo] = saved(webqa_home)
    assert demo["answer"] == "Ouagadougou [1]." and len(demo["steps"]) == 4


# -- case 15: where the session is saved cannot be written ------------------------------


def test_unwritable_demonstrations_file_is_reported_before_the_user_types(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    webqa_home: Path,
    tmp_path: Path,
) -> None:
    target = webqa_home / "demonstrations.jsonl"
    target.mkdir(parents=True)  # unwritable, even for root
    stream = stdin_bytes(monkeypatch, b"Search x\nEnd: Nonsense\n")
    missing = tmp_path / "no.zim"  # never opened: the check comes first
    assert main(["browse", QUESTION, "--zim", str(missing)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"webqa browse: cannot save demonstrations to {target}: ")
    assert stream.buffer.tell() == 0  # nothing was read from the user


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anyway")
def test_read_only_demonstrations_file_is_reported_before_the_user_types(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    webqa_home: Path,
    zim: Path,
) -> None:
    webqa_home.mkdir(parents=True)
    target = webqa_home / "demonstrations.jsonl"
    target.write_text('{"old": 1}\n', encoding="utf-8")
    target.chmod(0o444)
    stream = stdin_bytes(monkeypatch, b"Search x\nEnd: Nonsense\n")
    assert main(["browse", QUESTION, "--zim", str(zim)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"webqa browse: cannot save demonstrations to {target}: ")
    assert stream.buffer.tell() == 0
    assert target.read_text(encoding="utf-8") == '{"old": 1}\n'


def test_a_failed_save_at_the_end_still_keeps_the_session(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
    tmp_path: Path,
) -> None:
    def full(demo: demos_module.Demonstration, path: Path | None = None) -> Path:
        raise OSError(28, "No space left on device", str(webqa_home / "demonstrations.jsonl"))

    monkeypatch.setattr(demos_module, "save", full)
    monkeypatch.chdir(tmp_path)
    stdin_bytes(monkeypatch, GOOD + b"End: Answer\nOuagadougou [1].\n")
    assert main(["browse", QUESTION, "--zim", str(zim)]) == 1
    err = capsys.readouterr().err
    line = one_error_line(err)
    assert "No space left on device" in line
    [kept] = list(tmp_path.glob("webqa-demonstration-*.json"))
    assert str(kept) in line
    demo = json.loads(kept.read_text(encoding="utf-8"))
    assert demo["answer"] == "Ouagadougou [1]." and demo["question"] == QUESTION


@pytest.mark.parametrize(
    "argv",
    [
        ["browse", QUESTION],
        ["ask", QUESTION],
        ["batch", "questions.txt"],
        ["log"],
        ["search", "x"],
        ["corpus", "build"],
    ],
)
def test_a_data_directory_that_cannot_be_created_is_one_line_before_any_work(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    home = blocker / "webqa"
    monkeypatch.setenv("WEBQA_HOME", str(home))
    stream = stdin_bytes(monkeypatch, b"q?\n")
    assert main(argv) == 1
    captured = capsys.readouterr()
    line = one_error_line(captured.err, argv[0])
    assert line.startswith(f"webqa {argv[0]}: cannot use the data directory {home}")
    assert "WEBQA_HOME" in line
    assert stream.buffer.tell() == 0


def test_a_data_directory_that_cannot_be_written_is_one_line_before_any_work(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    webqa_home: Path,
) -> None:
    """As a read-only mount behaves (even for root): creating a file there fails."""

    def read_only(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(30, "Read-only file system", str(webqa_home / ".probe"))

    monkeypatch.setattr("webqa.api.tempfile.mkstemp", read_only)
    stream = stdin_bytes(monkeypatch, b"Search x\n")
    assert main(["browse", QUESTION]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"webqa browse: cannot use the data directory {webqa_home}: it is not writable "
        "(Read-only file system); set WEBQA_HOME to a folder you can write"
    )
    assert stream.buffer.tell() == 0


def test_commands_that_write_nothing_there_still_run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    zim: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("WEBQA_HOME", str(blocker / "webqa"))
    assert main(["search", "capital Bamako", "--zim", str(zim)]) == 0
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.html").write_text(PAGES["mali.html"], encoding="utf-8")
    assert main(["corpus", "build", str(src), "-o", str(tmp_path / "out.zim")]) == 0
    assert "Mali" in capsys.readouterr().out


# -- case 16: End: Answer, then no answer -----------------------------------------------


@pytest.mark.parametrize("tail", [b"", b"\n\n   \n"])
def test_end_answer_without_an_answer_is_not_saved_as_answered(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
    tail: bytes,
) -> None:
    stdin_bytes(monkeypatch, GOOD + b"End: Answer\n" + tail)
    assert main(["browse", QUESTION, "--zim", str(zim)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("webqa browse: no answer was written after End: Answer")
    [demo] = saved(webqa_home)
    assert demo["answer"] == "" and demo["end_reason"] == "abandoned"
    assert len(demo["steps"]) == 4 and len(demo["quotes"]) == 1


# -- typed at a terminal ----------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def typed(monkeypatch: pytest.MonkeyPatch, *entries: str | BaseException) -> list[str]:
    """A terminal where ``input()`` returns (or raises) ``entries`` in turn, then EOF."""
    monkeypatch.setattr("sys.stdin", Terminal())
    queue = list(entries)
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        if not queue:
            raise EOFError
        entry = queue.pop(0)
        if isinstance(entry, BaseException):
            raise entry
        return entry

    monkeypatch.setattr("builtins.input", fake_input)
    return prompts


def test_typed_invalid_utf8_and_an_empty_answer(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
) -> None:
    bad = UnicodeDecodeError("utf-8", b"caf\xe9", 3, 4, "invalid continuation byte")
    typed(
        monkeypatch,
        os.fsdecode(b"Qu\xe9stion?"),  # the question: asked again
        QUESTION,
        "Search capital Burkina Faso",
        bad,  # a strict locale: the line cannot be read at all
        os.fsdecode(b"Find in page: caf\xe9"),  # a C locale: surrogates
        "Clicked on link 0",
        "Quote: Its capital is Ouagadougou.",
        "End: Answer",
        "",  # an empty answer is asked for again
        "   ",
    )  # then Ctrl-D: no answer
    assert main(["browse", "--zim", str(zim)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.err.count("not valid UTF-8") == 3
    assert "The answer is empty" in captured.out
    assert "no answer was written after End: Answer" in captured.err
    [demo] = saved(webqa_home)
    assert demo["question"] == QUESTION and demo["end_reason"] == "abandoned"
    assert [s["command"] for s in demo["steps"]] == [
        "Search capital Burkina Faso",
        "Clicked on link 0",
        "Quote: Its capital is Ouagadougou.",
        "End: Answer",
    ]


def test_ctrl_c_while_typing_the_answer_keeps_what_was_written(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    zim: Path,
    webqa_home: Path,
) -> None:
    typed(
        monkeypatch,
        "Search capital Burkina Faso",
        "Clicked on link 0",
        "Quote: Its capital is Ouagadougou.",
        "End: Answer",
        "The capital is Ouagadougou [1].",
        KeyboardInterrupt(),
    )
    assert main(["browse", QUESTION, "--zim", str(zim)]) == 130
    assert "webqa browse: interrupted" in capsys.readouterr().err
    [demo] = saved(webqa_home)
    assert demo["answer"] == "The capital is Ouagadougou [1]."
    assert demo["end_reason"] == "interrupted"


def test_a_warning_is_one_line_without_python_s_source_line(zim: Path, tmp_path: Path) -> None:
    # a real process: pytest records warnings itself, so in-process they never reach stderr
    script = (
        "import sys, warnings\n"
        "from webqa import api, cli\n"
        "from webqa.web.cache import CacheWarning\n"
        "from webqa.web.zimweb import ZimWeb\n"
        "class Warning(api.Backends):\n"
        "    def web(self, **kwargs):\n"
        "        warnings.warn('the fetch cache X is damaged; set aside as Y', CacheWarning)\n"
        "        return ZimWeb(sys.argv[1])\n"
        "sys.exit(cli.main(['search', 'capital', '--zim', sys.argv[1]], Warning()))\n"
    )
    env = {**os.environ, "WEBQA_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(zim)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "webqa: the fetch cache X is damaged; set aside as Y"
