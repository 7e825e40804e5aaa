"""The command line's seam for batch tests: `webqa batch` and `webqa ask` build their
policy, reward model and web through webqa.api, so these tests put the fakes there."""

from __future__ import annotations

import pytest

from tests.batch.helpers import BF, AnyWeb, LengthScorer, RulePolicy
from webqa import api


@pytest.fixture
def policy(monkeypatch: pytest.MonkeyPatch) -> RulePolicy:
    """The rule policy every CLI run in the test gets (with a length scorer and a web
    that finds the Burkina Faso page whatever the query)."""
    rules = RulePolicy()
    monkeypatch.setattr(api, "load_policy", lambda *a, **k: rules)
    monkeypatch.setattr(api, "load_reward", lambda spec, policy: LengthScorer())
    monkeypatch.setattr(api, "open_web", lambda **k: AnyWeb([BF]))
    return rules
