"""Counts the hostile-corpus and property tests make while they run; printed at the end of the session
(see `pytest_terminal_summary` in tests/conftest.py), so a CI log shows what the run proved."""

from __future__ import annotations

from collections import Counter

TALLY: Counter[str] = Counter()
