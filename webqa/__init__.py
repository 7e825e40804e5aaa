"""webqa: WebGPT made real. A language model browses, quotes and writes cited answers."""

from webqa.agent import AgentConfig, Candidate, Result
from webqa.answering import Reference
from webqa.api import answer, answer_many
from webqa.batching import Answered, Question
from webqa.errors import WebQAError

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
