"""Regenerate docs/ops.md and docs/errors.md from the registry. Usage: python scripts/gen_docs.py"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from specc.docs import DOCS

    for relative, render in DOCS.items():
        (ROOT / relative).write_text(render(), encoding="utf-8")
        print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
