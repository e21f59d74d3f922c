"""Hypothesis profiles. CI runs `ci` (the default); a nightly job runs more examples with

    python -m pytest tests/test_properties.py --hypothesis-profile=nightly

Tests that need a fixed budget scale it by the profile (see `scaled` in tests/test_properties.py), so the
nightly profile multiplies every property test's examples.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.tally import TALLY

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=_SLOW, print_blob=True)
settings.register_profile("nightly", max_examples=2_000, deadline=None, suppress_health_check=_SLOW, print_blob=True)
settings.register_profile("dev", max_examples=20, deadline=None, suppress_health_check=_SLOW)
settings.load_profile(os.environ.get("SPECC_HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the hostile corpus and the property tests counted (only what ran in this session)."""
    if TALLY:
        terminalreporter.section("specc: what the hostile and property tests counted")
        for what, count in sorted(TALLY.items()):
            terminalreporter.write_line(f"{count:>8,}  {what}")
