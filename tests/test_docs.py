"""Generated reference docs are current, and the README's ops table names every op."""

from __future__ import annotations

import pytest

from specc.docs import DOCS
from specc.ops import all_ops
from tests.generated import ROOT


@pytest.mark.parametrize("relative", sorted(DOCS))
def test_generated_docs_are_current(relative: str) -> None:
    on_disk = (ROOT / relative).read_text(encoding="utf-8")
    assert on_disk == DOCS[relative](), f"{relative} is stale; run: python scripts/gen_docs.py"


def test_every_op_has_a_summary_and_torch_name() -> None:
    for name, op in all_ops().items():
        assert op.summary.endswith("."), name
        assert op.torch_name, name
