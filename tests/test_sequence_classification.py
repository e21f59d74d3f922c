"""Sequence classification (tokens -> class) through the same data/train sections: specs/token_classifier.yaml.

Real data, offline: each of scikit-learn's 8x8 digits becomes a sequence of 64 integer tokens (its pixel
intensities, 0..16) in an .npz file; the generated train.py trains the transformer encoder on them.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from tests.generated import ROOT, build
from tests.mnist_data import metrics, run_train, sklearn_digits


def _write_tokens(root: Path) -> None:
    pixels, labels = sklearn_digits()
    order = list(range(len(labels)))
    random.Random(0).shuffle(order)
    tokens = np.asarray(pixels, dtype=np.int64)[order]
    targets = np.asarray(labels, dtype=np.int64)[order]
    root.mkdir(parents=True)
    cut = 1400
    np.savez(root / "digits_tokens_train.npz", x=tokens[:cut], y=targets[:cut])
    np.savez(root / "digits_tokens_test.npz", x=tokens[cut:], y=targets[cut:])


def test_token_classifier_learns_digits_from_token_sequences(tmp_path: Path) -> None:
    out = build(ROOT / "specs" / "token_classifier.yaml", tmp_path / "build")
    _write_tokens(tmp_path / "data")
    run = tmp_path / "run"
    result = run_train(
        out, f"--data-root={tmp_path / 'data'}", f"--output-dir={run}", "--epochs=10", "--num-workers=0", timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = metrics(run)
    assert len(rows) == 10
    # Chance is 10%; a model that learned from the token sequences does far better on held-out digits.
    assert rows[-1]["val_accuracy"] >= 0.8, rows[-1]
