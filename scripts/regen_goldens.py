"""Rebuild tests/golden/<spec>/ from every spec in specs/ (run after an intended change to generated code).

Usage: python scripts/regen_goldens.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from specc.compiler import analyze, generate
    from specc.write import write_files

    golden = ROOT / "tests" / "golden"
    for spec in sorted((ROOT / "specs").glob("*.yaml")):
        out = golden / spec.stem
        files = generate(analyze(spec), out.name)
        if out.exists():
            shutil.rmtree(out)
        write_files(out, files)
        print(f"regenerated {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
