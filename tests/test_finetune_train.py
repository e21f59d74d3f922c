"""specs/resnet18_finetune.yaml fine-tunes end to end through its generated train.py (no network).

The "pretrained" weights are a torchvision ResNet-18 state_dict saved to a file (torchvision's download
is stubbed out by --weights-file); the images are real digits (scikit-learn's 0s and 1s) in an
ImageFolder tree, as the tutorial's ants and bees would be.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from PIL import Image

from tests.generated import ROOT, build
from tests.mnist_data import checkpoints, metrics, run_train, sklearn_digits


def _image_folder(root: Path, per_class: int) -> None:
    pixels, labels = sklearn_digits()
    for split, offset in (("train", 0), ("val", per_class)):
        for digit, name in ((0, "zeros"), (1, "ones")):
            folder = root / split / name
            folder.mkdir(parents=True)
            rows = [p for p, label in zip(pixels, labels, strict=True) if label == digit][offset : offset + per_class]
            for i, row in enumerate(rows):
                gray = Image.frombytes("L", (8, 8), bytes(int(v * 255 / 16) for v in row))
                gray.convert("RGB").resize((64, 64)).save(folder / f"{i}.png")


def test_finetune_trains_only_the_new_head(tmp_path: Path) -> None:
    out = build(ROOT / "specs" / "resnet18_finetune.yaml", tmp_path / "build")
    data = tmp_path / "data"
    _image_folder(data, per_class=12)
    torch.manual_seed(3)
    weights = tmp_path / "resnet18.pth"
    reference = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(reference, weights)

    run = tmp_path / "run"
    result = run_train(
        out,
        f"--data-root={data}",
        f"--output-dir={run}",
        f"--weights-file={weights}",
        "--epochs=2",
        "--num-workers=0",
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = metrics(run)
    assert [row["epoch"] for row in rows] == [1, 2]
    assert all(row["train_loss"] == row["train_loss"] for row in rows)  # finite, not NaN

    saved = checkpoints(run)
    assert len(saved) >= 2, saved
    first, final = (torch.load(path, map_location="cpu", weights_only=True)["model"] for path in (saved[0], saved[-1]))
    for key, value in reference.items():
        if key.startswith("fc."):
            assert final[key].shape[0] == 2
            assert not torch.equal(final[key], first[key]), f"the new head {key} did not train"
        elif key.endswith(("weight", "bias")):
            assert torch.equal(final[key], value), f"frozen {key} changed"
