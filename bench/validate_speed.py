"""Cold `specc validate specs/lenet.yaml` against a cold `python -c "import torch"`, in one run.

Target: validating a spec costs at most a quarter of importing torch, so CI can check specs cheaply.
Runs the two commands alternately (to share whatever the machine is doing) and reports medians.

Usage: python bench/validate_speed.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.25


# As installed for users: bytecode is cached after the first run (some sandboxes turn that off).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall_seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    validate = [sys.executable, "-m", "specc", "validate", "specs/lenet.yaml"]
    import_torch = [sys.executable, "-c", "import torch"]
    wall_seconds(validate)  # warm the file and bytecode caches for both, not the interpreters
    wall_seconds(import_torch)
    times: dict[str, list[float]] = {"validate": [], "import_torch": []}
    for _ in range(args.runs):
        times["validate"].append(wall_seconds(validate))
        times["import_torch"].append(wall_seconds(import_torch))
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["validate"] / medians["import_torch"]
    report = {
        "validate_s": round(medians["validate"], 4),
        "import_torch_s": round(medians["import_torch"], 4),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "runs": args.runs,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
