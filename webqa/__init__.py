"""webqa: WebGPT made real. A language model browses, quotes and writes cited answers."""

from webqa.agent import AgentConfig, Candidate, Result
from webqa.answering import Reference
from webqa.api import answer
from webqa.errors import WebQAError

__all__ = ["AgentConfig", "Candidate", "Reference", "Result", "WebQAError", "answer"]
__version__ = "0.1.0"
