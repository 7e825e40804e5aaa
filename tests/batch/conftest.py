"""The command line's seam for batch tests: `webqa batch` and `webqa ask` get their
policy, reward model, web and ranker from a Backends object, so these tests give them
the fakes (tests/fakes.py) through it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import pytest

from tests.fakes import FakeBackends, FakePolicy
from webqa.cli import main

Cli = Callable[[Sequence[str]], int]


@pytest.fixture
def policy() -> FakePolicy:
    """The rule policy every run in the test gets."""
    return FakePolicy()


@pytest.fixture
def backends(policy: FakePolicy) -> FakeBackends:
    """The parts every run in the test gets: ``policy``, a length scorer, and a web
    that finds the Burkina Faso page whatever the query."""
    return FakeBackends(policy)


@pytest.fixture
def cli(backends: FakeBackends) -> Cli:
    """``webqa.cli.main`` with the fake ``backends``."""
    return partial(main, backends=backends)
