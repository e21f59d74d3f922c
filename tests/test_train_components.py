"""Every loss, optimizer, scheduler and metric through a generated train.py, run in-process on
scikit-learn's real 8x8 digits (as `.npz` tensor files): the run trains, the numbers it reports
are the ones expected, and a run resumed from a checkpoint (weights_only) ends where the
uninterrupted run ends."""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.mnist_data import build_json, checkpoints, import_training, metrics, sklearn_digits, without_timing


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits_{train,test}.npz (classes), binary_*.npz (digit >= 5) and value_*.npz (digit / 9)."""
    root = tmp_path_factory.mktemp("digits")
    pixels, labels = sklearn_digits()
    x = np.asarray(pixels, dtype=np.float32) / 16
    y = np.asarray(labels)
    order = np.random.default_rng(0).permutation(len(y))
    parts = {"train": order[:1500], "test": order[1500:]}
    for split, index in parts.items():
        np.savez(root / f"digits_{split}.npz", x=x[index], y=y[index].astype(np.int64))
        np.savez(root / f"binary_{split}.npz", x=x[index], y=(y[index] >= 5).astype(np.float32))
        np.savez(root / f"value_{split}.npz", x=x[index], y=(y[index] / 9).astype(np.float32))
    return root


def spec(
    train: dict[str, Any],
    outputs: int = 10,
    head: tuple[Any, ...] = (),
    files: str = "digits",
    classes: int | None = 10,
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "type": "tensors",
        "train": f"{files}_train.npz",
        "test": f"{files}_test.npz",
        "sample_shape": [64],
    }
    if classes is not None:
        source["num_classes"] = classes
    return {
        "specc": 1,
        "name": "DigitsNet",
        "input": {"shape": [64]},
        "layers": [{"op": "linear", "out_features": 32}, "relu", {"op": "linear", "out_features": outputs}, *head],
        "data": {"source": source, "loader": {"batch_size": 50}},
        "train": {"epochs": 3, "checkpoint": {"keep": 10}, **train},
    }


def train_in_process(build: Path, digits: Path, run: Path, *args: str) -> list[dict[str, Any]]:
    module = import_training(build)
    code = module.main([f"--data-root={digits}", f"--output-dir={run}", "--device=cpu", *args])
    assert code == 0
    return metrics(run)


LOSSES = {
    "cross_entropy": ({"loss": {"type": "cross_entropy", "label_smoothing": 0.1}}, {}, "val_accuracy", 0.85),
    "nll": ({"loss": "nll"}, {"head": ({"op": "log_softmax", "dim": 1},)}, "val_accuracy", 0.85),
    "bce_with_logits": (
        {"loss": "bce_with_logits"},
        {"outputs": 1, "files": "binary", "classes": 2},
        "val_accuracy",
        0.8,
    ),
    "bce": (
        {"loss": "bce"},
        {"outputs": 1, "head": ("sigmoid",), "files": "binary", "classes": 2},
        "val_accuracy",
        0.8,
    ),
    "mse": ({"loss": "mse"}, {"outputs": 1, "files": "value", "classes": None}, "val_mae", -0.2),
    "l1": ({"loss": "l1"}, {"outputs": 1, "files": "value", "classes": None}, "val_mae", -0.2),
    "smooth_l1": (
        {"loss": {"type": "smooth_l1", "beta": 0.5}},
        {"outputs": 1, "files": "value", "classes": None},
        "val_mae",
        -0.2,
    ),
}


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_trains(name: str, digits: Path, tmp_path: Path) -> None:
    train, shape, key, bound = LOSSES[name]
    build = build_json(spec({**train, "optimizer": {"type": "adam", "lr": 0.01}}, **shape), tmp_path)
    rows = train_in_process(build, digits, tmp_path / "run")
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    value = rows[-1][key]
    assert value >= bound if bound > 0 else value <= -bound, rows[-1]  # accuracy high, or error low


@pytest.mark.parametrize(
    "optimizer",
    [
        {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
        {"type": "adam", "lr": 0.01, "amsgrad": True},
        {"type": "adamw", "lr": 0.01, "betas": [0.85, 0.99]},
        {"type": "rmsprop", "lr": 0.003, "momentum": 0.5, "centered": True},
    ],
    ids=lambda o: o["type"],
)
def test_each_optimizer_trains(optimizer: dict[str, Any], digits: Path, tmp_path: Path) -> None:
    build = build_json(spec({"optimizer": optimizer}), tmp_path)
    rows = train_in_process(build, digits, tmp_path / "run")
    assert rows[-1]["val_accuracy"] >= 0.85, rows
    assert rows[0]["lr"] == optimizer["lr"]


def _cosine(lr: float, epoch: int, total: int) -> float:
    return lr * (1 + math.cos(math.pi * epoch / total)) / 2


SCHEDULERS: dict[str, tuple[dict[str, Any], list[float] | None]] = {
    "none": ({}, [0.1, 0.1, 0.1, 0.1]),
    "step": ({"scheduler": {"type": "step", "step_size": 1, "gamma": 0.5}}, [0.1, 0.05, 0.025, 0.0125]),
    "multistep": ({"scheduler": {"type": "multistep", "milestones": [2, 3], "gamma": 0.1}}, [0.1, 0.1, 0.01, 0.001]),
    "cosine": ({"scheduler": "cosine"}, [_cosine(0.1, e, 4) for e in range(4)]),
    "linear": ({"scheduler": {"type": "linear", "start_factor": 0.5, "total_iters": 2}}, [0.05, 0.075, 0.1, 0.1]),
    "warmup_cosine": (
        {"scheduler": "cosine", "warmup": {"epochs": 2, "start_factor": 0.1}},
        [0.01, 0.055, 0.1, _cosine(0.1, 1, 2)],
    ),
    "warmup_alone": ({"warmup": {"epochs": 2}}, [0.01, 0.055, 0.1, 0.1]),
    "onecycle": ({"scheduler": {"type": "onecycle", "pct_start": 0.25}}, None),
    "plateau": ({"scheduler": {"type": "plateau", "patience": 0, "factor": 0.5}}, None),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_each_scheduler_sets_the_rate_and_resumes_exactly(name: str, digits: Path, tmp_path: Path) -> None:
    train, expected = SCHEDULERS[name]
    build = build_json(
        spec({"optimizer": {"type": "sgd", "lr": 0.1}, "epochs": 4, "deterministic": True, **train}), tmp_path
    )
    rows = train_in_process(build, digits, tmp_path / "run")
    lrs = [row["lr"] for row in rows]
    if expected is not None:
        assert lrs == pytest.approx(expected, rel=1e-9)
    elif name == "onecycle":  # stepped per batch: up to lr by the end of epoch 1 (25%), then far below it
        assert lrs[0] == pytest.approx(0.1, rel=1e-3) and lrs[1] < lrs[0] and lrs[-1] < 1e-3
    else:  # plateau: never up
        assert all(b <= a for a, b in itertools.pairwise(lrs))
    # Resume from the epoch-2 checkpoint into another directory: the same end, bit for bit.
    second = checkpoints(tmp_path / "run")[1]
    resumed = train_in_process(build, digits, tmp_path / "resumed", f"--resume={second}")
    assert without_timing(resumed) == without_timing(rows)
    final = torch.load(checkpoints(tmp_path / "run")[-1], weights_only=True)
    again = torch.load(checkpoints(tmp_path / "resumed")[-1], weights_only=True)
    assert all(torch.equal(final["model"][k], again["model"][k]) for k in final["model"])
    assert (final["scheduler"] is None) == (name in ("none",))


def test_metrics_are_the_sums_over_the_whole_set(digits: Path, tmp_path: Path) -> None:
    build = build_json(spec({"metrics": ["accuracy", {"type": "top_k", "k": 3}], "epochs": 2}), tmp_path)
    rows = train_in_process(build, digits, tmp_path / "run")
    assert list(rows[0])[:5] == ["epoch", "train_loss", "val_loss", "val_accuracy", "val_top3_accuracy"]
    # Recompute on the validation set from the final checkpoint, by hand.
    module = import_training(build)
    model = module.build_model()
    model.load_state_dict(torch.load(checkpoints(tmp_path / "run")[-1], weights_only=True)["model"])
    model.eval()
    val = module.dataset.build_datasets(str(digits), False)["val"]
    x = torch.stack([val[i][0] for i in range(len(val))])
    y = torch.stack([val[i][1] for i in range(len(val))])
    with torch.no_grad():
        out = model(x)
    assert rows[-1]["val_accuracy"] == (out.argmax(1) == y).double().mean().item()
    top3 = (out.topk(3, dim=1).indices == y[:, None]).any(1).double().mean().item()
    assert rows[-1]["val_top3_accuracy"] == top3
    assert rows[-1]["val_loss"] == pytest.approx(torch.nn.functional.cross_entropy(out, y).item(), rel=1e-6)


def test_regression_metrics(digits: Path, tmp_path: Path) -> None:
    build = build_json(spec({"loss": "mse", "epochs": 2}, outputs=1, files="value", classes=None), tmp_path)
    rows = train_in_process(build, digits, tmp_path / "run")
    assert list(rows[0])[:5] == ["epoch", "train_loss", "val_loss", "val_mse", "val_mae"]
    assert rows[-1]["val_mse"] == pytest.approx(rows[-1]["val_loss"], rel=1e-6)  # mse loss == mse metric
    assert rows[-1]["val_mae"] ** 2 <= rows[-1]["val_mse"] + 1e-12  # Jensen


def test_gradient_clipping_bounds_each_step(digits: Path, tmp_path: Path) -> None:
    build = build_json(spec({"optimizer": {"type": "sgd", "lr": 1.0}, "clip_grad_norm": 0.01, "epochs": 1}), tmp_path)
    module = import_training(build)
    torch.manual_seed(0)  # as train.py does with --seed 0: the same initial weights
    before = copy.deepcopy(module.build_model().state_dict())
    assert module.main([f"--data-root={digits}", f"--output-dir={tmp_path / 'run'}", "--device=cpu"]) == 0
    after = torch.load(checkpoints(tmp_path / "run")[-1], weights_only=True)["model"]
    # 30 SGD steps of lr 1 with gradients clipped to norm 0.01 move the weights by at most 0.3.
    moved = math.sqrt(sum(float((after[k] - before[k]).pow(2).sum()) for k in before))
    assert 0 < moved <= 27 * 0.01 + 1e-6  # unclipped, the same run moves them by more than 5


def test_only_trainable_parameters_reach_the_optimizer(digits: Path, tmp_path: Path) -> None:
    build = build_json(spec({}), tmp_path)
    module = import_training(build)
    model = module.build_model()
    for p in list(model.parameters())[:2]:  # freeze the first layer, as fine-tuning does
        p.requires_grad = False
    optimizer = module.build_optimizer(model, 0.1)
    given = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert given == {id(p) for p in model.parameters() if p.requires_grad}
    assert len(given) == 2
