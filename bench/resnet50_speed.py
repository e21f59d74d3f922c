"""Forward+backward time of specc's generated ResNet-50 against torchvision's, in one process.

Same weights, same input (batch 8, 3x224x224), CPU, runs alternating between the two models so
both see the same machine state. Target: ratio (generated / torchvision) within 0.97-1.03.

Usage: python bench/resnet50_speed.py [--rounds N] [--batch B]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parent.parent


def generated_resnet50(directory: Path) -> torch.nn.Module:
    sys.path.insert(0, str(ROOT))
    from specc.compiler import analyze, generate
    from specc.write import write_files

    write_files(directory, generate(analyze(ROOT / "specs" / "resnet50.yaml"), directory.name))
    spec = importlib.util.spec_from_file_location("generated_resnet50", directory / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_model()


def step_seconds(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    reference = torchvision.models.resnet50(weights=None)
    with tempfile.TemporaryDirectory() as tmp:
        generated = generated_resnet50(Path(tmp) / "resnet50")
    generated.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(args.batch, 3, 224, 224)
    for model in (generated, reference):  # warm-up: allocator, kernels
        step_seconds(model, x)
    times: dict[str, list[float]] = {"generated": [], "torchvision": []}
    for round_ in range(args.rounds):
        order = [("generated", generated), ("torchvision", reference)]
        for name, model in order if round_ % 2 == 0 else reversed(order):
            times[name].append(step_seconds(model, x))
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["generated"] / medians["torchvision"]
    print(
        json.dumps(
            {
                "generated_s": round(medians["generated"], 4),
                "torchvision_s": round(medians["torchvision"], 4),
                "ratio": round(ratio, 4),
                "target": [0.97, 1.03],
                "meets_target": 0.97 <= ratio <= 1.03,
                "batch": args.batch,
                "rounds": args.rounds,
                "threads": torch.get_num_threads(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
