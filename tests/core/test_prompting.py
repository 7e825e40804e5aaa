from __future__ import annotations

import pytest

from webqa import prompting
from webqa.errors import TemplateError


def test_render_fills_every_variable() -> None:
    text = prompting.render("answer", question="Q?", quotes="[1] T (d): x")
    assert "Question: Q?" in text
    assert "[1] T (d): x" in text
    assert "{{" not in text


def test_missing_variable_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"missing variable\(s\) quotes"):
        prompting.render("answer", question="Q?")


def test_unknown_variable_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"unknown variable\(s\) extra"):
        prompting.render("answer", question="Q", quotes="x", extra="y")


def test_missing_template_is_an_error() -> None:
    with pytest.raises(TemplateError, match="'no_such_prompt' not found"):
        prompting.load("no_such_prompt")


def test_browse_prompt_shows_a_complete_episode() -> None:
    text = prompting.render("browse_system")
    for command in ("Search ", "Clicked on link ", "Find in page: ", "Quote: ", "End: Answer"):
        assert f"●Next action\n{command}" in text
