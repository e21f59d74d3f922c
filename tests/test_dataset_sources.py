"""Every data source through a generated dataset.py and train.py, on real digits: torchvision's MNIST
family (raw IDX files), FakeData, an ImageFolder of PNGs, CSV files, `.npz`/`.pt` tensor files and
a user's own Dataset class."""

from __future__ import annotations

import ast
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tests.mnist_data import build_json, import_training, metrics, mnist_digits, sklearn_digits, write_mnist

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def net(shape: list[int], source: dict[str, Any], **data: Any) -> dict[str, Any]:
    """A small classifier of `shape` inputs on `source`."""
    return {
        "specc": 1,
        "name": "Net",
        "input": {"shape": shape},
        "layers": ["flatten", {"op": "linear", "out_features": 64}, "relu", {"op": "linear", "out_features": 10}],
        "data": {"source": source, "loader": {"batch_size": 50}, **data},
        "train": {"epochs": 3, "optimizer": {"type": "adam", "lr": 0.003}},
    }


def train(build: Path, root: Path, run: Path, *args: str) -> int:
    return int(import_training(build).main([f"--data-root={root}", f"--output-dir={run}", "--device=cpu", *args]))


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's digits as CSV (numbers and named labels), .npz and .pt files."""
    root = tmp_path_factory.mktemp("digits_files")
    pixels, labels = sklearn_digits()
    header = [f"p{i}" for i in range(64)]
    for split, rows in (("train", range(0, 1500)), ("test", range(1500, len(labels)))):
        with open(root / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*header, "label"])
            writer.writerows([*(int(v) for v in pixels[i]), labels[i]] for i in rows)
        with open(root / f"{split}_named.csv", "w", newline="") as handle:
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(["digit", *header])
            writer.writerows([DIGIT_NAMES[labels[i]], *(int(v) for v in pixels[i])] for i in rows)
        x = np.asarray([pixels[i] for i in rows], dtype=np.uint8).reshape(-1, 1, 8, 8)
        y = np.asarray([labels[i] for i in rows], dtype=np.int32)
        np.savez(root / f"{split}.npz", images=x, digits=y)
        torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, root / f"{split}.pt")
    return root


@pytest.mark.parametrize("source", ["mnist", "fashion_mnist", "kmnist"])
def test_torchvision_mnist_family_reads_raw_idx_files(source: str, tmp_path: Path) -> None:
    folder = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}[source]
    write_mnist(tmp_path / "data", n_train=1000, n_test=200, folder=folder)
    spec = net([1, 28, 28], {"type": source, "download": False}, transforms={"train": ["to_tensor"]}, val="test")
    build = build_json(spec, tmp_path)
    sets = import_training(build).dataset.build_datasets(str(tmp_path / "data"), False)
    assert {name: len(s) for name, s in sets.items()} == {"train": 1000, "val": 200}  # val is the test split
    assert train(build, tmp_path / "data", tmp_path / "run") == 0
    assert metrics(tmp_path / "run")[-1]["val_accuracy"] > 0.8  # real digits, whatever the folder says


def test_fake_data_needs_no_files(tmp_path: Path) -> None:
    source = {"type": "fake_data", "size": 100, "test_size": 40, "image_size": [3, 12, 10], "num_classes": 10}
    build = build_json(net([3, 12, 10], source), tmp_path)
    assert train(build, tmp_path / "nothing", tmp_path / "run", "--epochs=1") == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2  # 90 training images (10 held out), batches of 50


def test_image_folder_of_pngs(tmp_path: Path) -> None:
    digits = mnist_digits()
    for split, rows in (("train", digits[::10]), ("val", digits[5::50])):
        for i, (pixels, label) in enumerate(rows):
            folder = tmp_path / "images" / split / DIGIT_NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.frombytes("L", (28, 28), pixels).save(folder / f"{i}.png")
    spec = net(
        [3, 28, 28],
        {"type": "image_folder", "train": "train", "val": "val"},
        transforms={"train": ["to_tensor", {"op": "normalize", "mean": [0.13], "std": [0.31]}]},
    )
    build = build_json(spec, tmp_path)
    sets = import_training(build).dataset.build_datasets(str(tmp_path / "images"), False)
    assert {name: len(s) for name, s in sets.items()} == {"train": 500, "val": 100}  # `auto`: the own val folder
    assert sets["train"].classes == sorted(DIGIT_NAMES)
    assert train(build, tmp_path / "images", tmp_path / "run", "--epochs=4") == 0
    assert metrics(tmp_path / "run")[-1]["val_accuracy"] > 0.6


def test_image_folder_of_the_wrong_size_is_caught_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for label in ("a", "b"):
        (tmp_path / "images" / "train" / label).mkdir(parents=True)
        Image.new("RGB", (20, 24)).save(tmp_path / "images" / "train" / label / "0.png")
    build = build_json(net([3, 32, 32], {"type": "image_folder"}, val=None), tmp_path)  # sizes unknown when compiling
    assert train(build, tmp_path / "images", tmp_path / "run") == 2
    assert capsys.readouterr().err == (
        "error: the data gives samples of shape (3, 24, 20), but Net takes (3, 32, 32): "
        "add a resize, crop or pad to the spec's transforms\n"
    )


def test_csv_with_integer_labels(digits_files: Path, tmp_path: Path) -> None:
    spec = net([64], {"type": "csv", "train": "train.csv", "test": "test.csv", "label": "label"})
    build = build_json(spec, tmp_path)
    assert train(build, digits_files, tmp_path / "run") == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test"]["accuracy"] > 0.85


def test_csv_with_named_classes_and_listed_features(digits_files: Path, tmp_path: Path) -> None:
    features = [f"p{i}" for i in range(64)]
    source = {
        "type": "csv",
        "train": "train_named.csv",
        "label": "digit",
        "features": features,
        "classes": DIGIT_NAMES,
        "delimiter": ";",
    }
    build = build_json(net([64], source), tmp_path)
    sets = import_training(build).dataset.build_datasets(str(digits_files), False)
    x, y = sets["train"][0]
    assert x.shape == (64,) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert train(build, digits_files, tmp_path / "run") == 0
    assert metrics(tmp_path / "run")[-1]["val_accuracy"] > 0.85


def test_csv_file_missing_names_the_path(
    digits_files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = net([64], {"type": "csv", "train": "nope.csv", "label": "label"})
    build = build_json(spec, tmp_path)
    assert train(build, digits_files, tmp_path / "run") == 2
    missing = digits_files / "nope.csv"
    assert capsys.readouterr().err == (
        f"error: train data not found: {missing} does not exist (set the data root with --data-root)\n"
    )


@pytest.mark.parametrize("suffix", ["npz", "pt"])
def test_tensor_files_of_uint8_images(suffix: str, digits_files: Path, tmp_path: Path) -> None:
    keys = {"x_key": "images", "y_key": "digits"} if suffix == "npz" else {}
    source = {
        "type": "tensors",
        "train": f"train.{suffix}",
        "test": f"test.{suffix}",
        "sample_shape": [1, 8, 8],
        **keys,
    }
    # The pixels are 0..16 in uint8: to_dtype without scaling, then normalize, on whole batches.
    transforms = {"train": [{"op": "to_dtype", "scale": False}, {"op": "normalize", "mean": [4.9], "std": [6.0]}]}
    build = build_json(net([1, 8, 8], source, transforms=transforms), tmp_path)
    module = import_training(build)
    assert module.dataset.train_transform() is None  # nothing per sample
    x, y = module.dataset.build_datasets(str(digits_files), False)["train"][0]
    assert x.dtype == torch.uint8 and y.dtype == torch.int64  # int32 targets become class indices
    assert train(build, digits_files, tmp_path / "run") == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["test"]["accuracy"] > 0.85


CUSTOM = '''
import csv

import torch
from torch.utils.data import Dataset


class Digits(Dataset):
    """A user's own dataset: the digits CSV, its pixels divided by `scale`."""

    def __init__(self, root, split, transform, scale=1.0, verbose=False):
        with open(f"{root}/{split}.csv", newline="") as handle:
            rows = list(csv.reader(handle))[1:]
        self.x = torch.tensor([[float(v) / scale for v in row[:-1]] for row in rows])
        self.y = torch.tensor([int(row[-1]) for row in rows])
        self.transform = transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]
'''


def test_custom_dataset_class_by_import_path(digits_files: Path, tmp_path: Path) -> None:
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "data.py").write_text(CUSTOM)
    source = {
        "type": "custom",
        "class": "userpkg.data.Digits",
        "args": {"scale": 16.0, "verbose": True},
        "splits": ["train", "test"],
        "sample_shape": [64],
        "num_classes": 10,
    }
    build = build_json(net([64], source), tmp_path)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "train.py", f"--data-root={digits_files}", f"--output-dir={run}", "--device=cpu"],
        cwd=build,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "summary.json").read_text())["test"]["accuracy"] > 0.8
    # Without the package on the path: a clear message.
    missing = subprocess.run(
        [sys.executable, "train.py", f"--data-root={digits_files}", f"--output-dir={tmp_path / 'r2'}"],
        cwd=build,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2
    assert missing.stderr == (
        "error: cannot import userpkg.data.Digits: No module named 'userpkg' (is its package on PYTHONPATH?)\n"
    )


def test_spec_strings_reach_the_code_only_as_literals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sneaky = "x\"); import os; os.remove('/'); (\"\n.csv"
    spec = net([64], {"type": "csv", "train": sneaky, "label": 'it\'s "quoted"\n'})
    build = build_json(spec, tmp_path)
    tree = ast.parse((build / "dataset.py").read_text())
    constants = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    assert {sneaky, 'it\'s "quoted"\n'} <= constants  # whole, as string literals
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "remove"]
    assert train(build, tmp_path, tmp_path / "run") == 2
    assert capsys.readouterr().err.startswith(f"error: train data not found: {tmp_path / sneaky} does not exist")
