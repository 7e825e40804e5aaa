"""Prompt templates: plain text files in prompts/, shipped inside the wheel.

A template names its variables as ``{{name}}``. Rendering with a missing variable, or
with a variable the template does not use, is an error: what is sent is exactly what
the template says.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from webqa.errors import TemplateError

_VAR = re.compile(r"\{\{(\w+)\}\}")


@cache
def load(name: str) -> str:
    """The text of prompts/<name>.txt."""
    try:
        return (resources.files("webqa") / "prompts" / f"{name}.txt").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise TemplateError(f"prompt template {name!r} not found in webqa/prompts") from exc


def variables(name: str) -> set[str]:
    """The variables template ``name`` expects."""
    return set(_VAR.findall(load(name)))


def render(name: str, **values: str) -> str:
    """Template ``name`` with every ``{{var}}`` replaced; all and only its variables."""
    text = load(name)
    wanted = variables(name)
    missing = wanted - values.keys()
    if missing:
        raise TemplateError(f"prompt {name!r}: missing variable(s) {', '.join(sorted(missing))}")
    extra = values.keys() - wanted
    if extra:
        raise TemplateError(f"prompt {name!r}: unknown variable(s) {', '.join(sorted(extra))}")
    return _VAR.sub(lambda m: values[m.group(1)], text)
