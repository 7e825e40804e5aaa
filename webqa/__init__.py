"""webqa: WebGPT made real. A language model browses, quotes and writes cited answers."""

import os as _os
import sys as _sys

# torch's OpenMP threads, when idle, sleep instead of spinning (see
# webqa.models.hardware.default_threads). Read once, when torch starts: so only if it has not.
if "torch" not in _sys.modules:
    _os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from webqa.agent import AgentConfig
from webqa.api import answer, answer_many
from webqa.errors import WebQAError
from webqa.runner import Answered
from webqa.values import Candidate, Question, Reference, Result

__all__ = [
    "AgentConfig",
    "Answered",
    "Candidate",
    "Question",
    "Reference",
    "Result",
    "WebQAError",
    "answer",
    "answer_many",
]
__version__ = "0.1.0"
