"""Grading an answer against gold answers: what the benchmarks score and what the
bootstrap comparisons (``webqa.bootstrap``) are built from.

An answerable question's answer is right when it contains one of the gold answers
(both folded: accents, case, spacing, curly apostrophes); an unanswerable question's is
right when it declines. Containment is lenient by design; the question generator
(benchmarks/gen_questions.py) drops gold answers too loose to grade this way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

DECLINE = re.compile(
    r"could not find|couldn't find|cannot find|can't find|no (?:information|answer|quote)"
    r"|not (?:mentioned|found|contain|say|provide)|unable to|do not know|don't know"
    r"|will not answer|no passage",
    re.IGNORECASE,
)


def norm(text: str) -> str:
    """``text`` folded for containment: no accents, lower case, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.lower().replace("\u2019", "'").split())


def declined(answer: str) -> bool:
    """Whether an answer declines (says it found no answer)."""
    return bool(DECLINE.search(answer))


def correct(item: Mapping[str, Any], answer: str) -> bool:
    """Whether ``answer`` is right for a question row (``answerable``, ``answers``)."""
    if not item["answerable"]:
        return declined(answer)
    golds: Sequence[str] = item["answers"]
    return any(g and norm(g) in norm(answer) for g in golds)
