"""The package's import graph has no cycle (issue 12), counting imports inside functions
too: a cycle there is one a lazy import only hides."""

from __future__ import annotations

import ast
from pathlib import Path

import webqa

ROOT = Path(webqa.__file__).parent


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The webqa modules ``path`` imports, anywhere in it (``from webqa.store import
    reader`` is the module webqa.store.reader, not the package)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known.keys()
            out |= subs or ({node.module} & known.keys())
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names} & known.keys()
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_the_package() -> None:
    known = modules()
    assert {"webqa.api", "webqa.runner", "webqa.models.local"} <= known.keys()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert graph["webqa.runner"] >= {"webqa.agent", "webqa.values"}  # it reads imports
    assert cycles(graph) == []


# Layers, lowest first: a module may import only from its own layer or lower ones, and
# the browser and the models (siblings) not from each other.
LAYERS = (
    (
        "webqa.errors",
        "webqa.comparisons",
        "webqa.grading",
        "webqa.jsonl",
        "webqa.paths",
        "webqa.retry",
        "webqa.sqlitedb",
        "webqa.text",
        "webqa.values",
    ),
    ("webqa.web",),
    ("webqa.browser", "webqa.models", "webqa.prompting", "webqa.demos"),
    ("webqa.shortlist", "webqa.tidying", "webqa.answering", "webqa.reading", "webqa.ranking"),
    ("webqa.procedure",),
    ("webqa.episode", "webqa.redraft", "webqa.drafting", "webqa.browsing"),
    ("webqa.agent",),
    (
        "webqa.store",
        "webqa.runner",
        "webqa.questionfile",
        "webqa.answerfile",
        "webqa.bootstrap",
        "webqa.expert",
    ),
    ("webqa.api",),
    ("webqa.frontend", "webqa.cli", "webqa"),
)
SIBLINGS = (("webqa.browser", "webqa.models"),)


def layer_of(module: str) -> tuple[int, str]:
    """The layer of ``module`` and the name that placed it (the longest that matches)."""
    best = (-1, "")
    for rank, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best[1]):
                best = (rank, name)
    assert best[0] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best


def upward(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in sorted(graph.items()):
        rank, group = layer_of(module)
        for target in sorted(targets):
            their, other = layer_of(target)
            if their > rank or {group, other} in [set(pair) for pair in SIBLINGS]:
                wrong.append(f"{module} -> {target}")
    return wrong


def test_the_layer_check_sees_an_upward_import() -> None:
    assert upward({"webqa.values": {"webqa.api"}}) == ["webqa.values -> webqa.api"]
    assert upward({"webqa.models.base": {"webqa.browser.page"}}) == [
        "webqa.models.base -> webqa.browser.page"
    ]
    assert upward({"webqa.api": {"webqa.values"}}) == []


def test_imports_run_one_way_down_the_layers() -> None:
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert upward(graph) == []
