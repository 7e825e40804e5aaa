"""Rendering hostile pages: seconds and peak memory for each, and the worst case.

Builds each page here (every one under the fetcher's byte cap: the largest page the
browser can be given), renders it with ``page_from_html`` as a fetched page is rendered
(hidden parts dropped, Readability on) in a fresh subprocess, so that the peak memory
measured (``ru_maxrss``: the whole process, interpreter and imports included) is that
page's alone, and prints JSON. The target (issue 11): at most 3 s and 300 MB a page.

    .venv/bin/python benchmarks/hostile_pages.py [--only NAME ...] [--repeat 1]
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from machine import machine_report

TARGET_SECONDS = 3.0
TARGET_MB = 300.0
URL = "https://hostile.example/page"


def _cap() -> int:
    """The fetcher's default byte cap (the largest page a fetch returns)."""
    from webqa.web.fetch import Fetcher

    return int(inspect.signature(Fetcher.__init__).parameters["max_bytes"].default)


def _fill(unit: str, budget: int, head: str = "", tail: str = "") -> str:
    """``head``, ``unit`` repeated to fill ``budget`` UTF-8 bytes, then ``tail``."""
    room = budget - len((head + tail).encode()) - 1
    return head + unit * max(0, room // len(unit.encode())) + tail


def _class_rules(budget: int) -> str:
    """``.cN{display:none}`` rules filling ``budget`` characters."""
    out, size, i = [], 0, 0
    while size < budget:
        out.append(f".c{i}{{display:none}}")
        size += len(out[-1])
        i += 1
    return "".join(out)


def pages(cap: int) -> dict[str, Callable[[], str]]:
    """Each hostile page by name (built lazily, in the subprocess that renders it)."""
    words = "lorem ipsum dolor sit amet, consectetur adipiscing elit "
    return {
        # the three from the issue
        "paragraphs_500k": lambda: "<html><body>" + "<p>a</p>" * 500_000 + "</body></html>",
        "links_60k": lambda: (
            "<html><body>"
            + "".join(
                f'<a href="https://site{i}.example/p/{i}">link {i}</a> ' for i in range(60_000)
            )
            + "</body></html>"
        ),
        "unclosed_li_100k": lambda: "<ul>" + "<li>item" * 100_000,
        # structure
        "deep_nesting": lambda: _fill("<div>", cap, tail="deep"),
        "deep_nesting_with_text": lambda: _fill(f"<div>{words}", cap),
        "unclosed_inline_tags": lambda: _fill("<b><i>x", cap),
        "table_cells": lambda: _fill("<tr><td>cell, text</td><td>more</td></tr>", cap, "<table>"),
        "line_breaks": lambda: _fill("<br>", cap, "<p>"),
        "details_blocks": lambda: _fill(
            "<details><summary>Question</summary><p>hidden body</p></details>", cap
        ),
        "images": lambda: _fill('<img src="x.png" alt="an image of something">', cap),
        "comments": lambda: _fill("<!-- a comment -->", cap, tail="<p>end</p>"),
        # text
        "huge_text_node": lambda: _fill("word ", cap, "<p>", "</p>"),
        "huge_single_word": lambda: _fill("a", cap, "<p>", "</p>"),
        "huge_link_text": lambda: _fill("word ", cap, '<a href="/x">', "</a>"),
        "huge_title": lambda: _fill("title ", cap, "<title>", "</title><p>body</p>"),
        "non_ascii_text": lambda: _fill("雪山の頂上 ", cap, "<p>", "</p>"),
        "invisible_characters": lambda: _fill("a\u200b\u202e", cap, "<p>", "</p>"),
        "entities": lambda: _fill("&amp;&#x202e;", cap, "<p>", "</p>"),
        "script_block": lambda: _fill("var x = '<p>not text</p>';", cap, "<script>", "</script>"),
        # attributes and styles
        "many_attributes": lambda: _fill(' data-a="1"', cap, "<p", ">text</p>"),
        "many_classes": lambda: _fill(
            " c", cap, "<style>.c{font-size:0}</style><p class='", "'>text</p>"
        ),
        "inline_styles": lambda: _fill(
            '<span style="color:#fff;background:#fefefe;font-size:0.1px;opacity:.5">x</span>', cap
        ),
        "many_style_rules": lambda: _fill(
            '<p class="c7">text</p>', cap, "<style>" + _class_rules(cap // 2) + "</style>"
        ),
        "combinator_rules": lambda: _fill(
            '<div class="x"><p class="y">text',
            cap,
            "<style>"
            + "".join(f"div div div .x .y.z{i}, body div>.x p{{display:none}}" for i in range(3000))
            + "</style>",
        ),
        "media_rules": lambda: _fill(
            "@media screen and (min-width: 1px) { .a { display: none } } ",
            cap // 2,
            "<style>",
            "</style>" + '<p class="a">x</p>' * 20_000,
        ),
        "unclosed_style_comment": lambda: _fill("x", cap, "<style>/* .a{display:none}", "</style>"),
    }


def render_one(name: str, repeat: int) -> dict[str, Any]:
    """Build page ``name`` and render it (run in a fresh subprocess)."""
    from webqa.browser.page import page_from_html

    html = pages(_cap())[name]()
    size = len(html.encode())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = []
    page = None
    for _ in range(repeat):
        started = time.perf_counter()
        page = page_from_html(URL, html)
        seconds.append(time.perf_counter() - started)
    assert page is not None
    return {
        "name": name,
        "bytes": size,
        "seconds": round(max(seconds), 3),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "before_mb": round(before, 1),
        "lines": len(page.lines),
        "links": len(page.links),
        "chars": len(page.plain),
        "notice": page.notice,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="render only these pages")
    parser.add_argument("--repeat", type=int, default=1, help="renders per page (worst kept)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(render_one(args.child, args.repeat)))
        return 0
    cap = _cap()
    names = args.only or list(pages(cap))
    results = []
    for name in names:
        run = subprocess.run(
            [sys.executable, __file__, "--child", name, "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            results.append({"name": name, "error": run.stderr.strip().splitlines()[-1:]})
            continue
        results.append(json.loads(run.stdout))
        print(json.dumps(results[-1]), file=sys.stderr)
    done = [r for r in results if "error" not in r]
    slowest = max(done, key=lambda r: r["seconds"], default=None)
    largest = max(done, key=lambda r: r["peak_mb"], default=None)
    report = {
        "machine": machine_report(),
        "fetch_cap_bytes": cap,
        "target": {"seconds": TARGET_SECONDS, "peak_mb": TARGET_MB},
        "pages": results,
        "worst": {
            "seconds": slowest and {"name": slowest["name"], "seconds": slowest["seconds"]},
            "peak_mb": largest and {"name": largest["name"], "peak_mb": largest["peak_mb"]},
        },
        "all_within_target": len(done) == len(results)
        and all(r["seconds"] <= TARGET_SECONDS and r["peak_mb"] <= TARGET_MB for r in done),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
