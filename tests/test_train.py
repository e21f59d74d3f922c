"""The generated train.py, run for real on real MNIST digits (CPU): accuracy, torchrun/DDP, exact
resume after SIGKILL and Ctrl-C, a diverging run, and the guards that keep a run from being lost."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.mnist_data import (
    REPO,
    build_spec,
    checkpoints,
    free_port,
    import_training,
    metrics,
    run_train,
    without_timing,
    write_mnist,
)

LENET = REPO / "specs" / "lenet.yaml"

# LeNet with augmentation and dropout: resuming must restore every random generator exactly.
AUGMENTED = """
specc: 1
name: AugNet
input: {shape: [1, 28, 28]}
layers:
  - {op: conv2d, out_channels: 8, kernel_size: 5}
  - relu
  - {op: max_pool2d, kernel_size: 2}
  - flatten
  - {op: dropout, p: 0.3}
  - {op: linear, out_features: 10}
data:
  source: {type: mnist, download: false}
  transforms:
    train:
      - {op: random_rotation, degrees: 10}
      - to_tensor
      - {op: normalize, mean: [0.1307], std: [0.3081]}
  loader: {batch_size: 50}
train:
  epochs: 3
  optimizer: {type: sgd, lr: 0.05, momentum: 0.9}
  scheduler: {type: cosine}
  deterministic: true
"""


@pytest.fixture(scope="module")
def mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("mnist")).parents[1]


@pytest.fixture(scope="module")
def small_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("small_mnist"), n_train=1500, n_test=300).parents[1]


@pytest.fixture(scope="module")
def lenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("lenet")
    return build_spec(LENET.read_text(), tmp, name="lenet.yaml", out="lenet")


@pytest.fixture(scope="module")
def augmented(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_spec(AUGMENTED, tmp_path_factory.mktemp("augmented"), name="aug.yaml")


@pytest.fixture(scope="module")
def reference(augmented: Path, small_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 3-epoch run of the augmented spec."""
    run = tmp_path_factory.mktemp("reference") / "run"
    done = run_train(augmented, f"--data-root={small_mnist}", f"--output-dir={run}", "--device=cpu")
    assert done.returncode == 0, done.stderr
    return run


def _final_state(run: Path) -> dict:
    return torch.load(checkpoints(run)[-1], map_location="cpu", weights_only=True)


def _assert_same_run(run: Path, reference: Path) -> None:
    """Bit-for-bit the same final weights, optimizer state and metrics as the reference run."""
    mine, theirs = _final_state(run), _final_state(reference)
    assert mine["model"].keys() == theirs["model"].keys()
    for name, tensor in theirs["model"].items():
        assert torch.equal(mine["model"][name], tensor), name
    for key, state in theirs["optimizer"]["state"].items():
        assert torch.equal(mine["optimizer"]["state"][key]["momentum_buffer"], state["momentum_buffer"])
    assert (mine["epoch"], mine["step"]) == (theirs["epoch"], theirs["step"])
    assert without_timing(metrics(run)) == without_timing(metrics(reference))
    assert (
        json.loads((run / "summary.json").read_text())["test"]
        == json.loads((reference / "summary.json").read_text())["test"]
    )


def _wait_for(path_glob: Path, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not list(path_glob.parent.glob(path_glob.name)):
        assert process.poll() is None, "training ended before the checkpoint appeared"
        assert time.monotonic() < deadline, f"no {path_glob} after {timeout} s"
        time.sleep(0.01)


def test_lenet_reaches_95_percent_on_held_out_mnist(lenet: Path, mnist: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = run_train(lenet, f"--data-root={mnist}", f"--output-dir={run}", "--device=cpu")
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["accuracy"] >= 0.95, summary
    rows = metrics(run)
    assert [row["epoch"] for row in rows] == list(range(1, 11))
    assert list(rows[0]) == [
        "epoch",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "lr",
        "train_samples_per_second",
        "seconds",
    ]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert [p.name for p in checkpoints(run)] == [  # the newest 3 are kept
        "checkpoint-epoch0008-step000000456.pt",
        "checkpoint-epoch0009-step000000513.pt",
        "checkpoint-epoch0010-step000000570.pt",
    ]
    # The checkpoint holds the trained weights: evaluated here, independently, on the 1,000 test digits.
    train = import_training(lenet)
    model = train.build_model()
    model.load_state_dict(_final_state(run)["model"])
    model.eval()
    test_set = train.dataset.build_datasets(str(mnist), False)["test"]
    assert len(test_set) == 1000
    loader = torch.utils.data.DataLoader(test_set, batch_size=500)
    normalize = train.dataset.eval_batch_transform()
    with torch.no_grad():
        correct = sum(int((model(normalize(x)).argmax(1) == y).sum()) for x, y in loader)
    assert correct / 1000 == summary["test"]["accuracy"]
    assert summary["weights_sha256"] == [train.weights_sha256(model)]


def test_torchrun_two_processes_end_with_identical_weights(lenet: Path, small_mnist: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    done = subprocess.run(
        [
            *launcher,
            "--nproc_per_node=2",
            f"--master_port={free_port()}",
            "train.py",
            f"--data-root={small_mnist}",
            f"--output-dir={run}",
            "--epochs=2",
            "--device=cpu",
        ],
        cwd=lenet,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    # Each process hashed its own final weights; rank 0 gathered them.
    first, second = summary["weights_sha256"]
    assert first == second
    # Each process took its half of the 1,350 training digits: ceil(675 / 64) = 11 steps per epoch.
    assert summary["steps"] == 2 * 11
    train = import_training(lenet)
    model = train.build_model()
    model.load_state_dict(_final_state(run)["model"])
    assert train.weights_sha256(model) == first
    assert done.stdout.count("epoch 2/2") == 1  # only rank 0 logs
    assert math.isfinite(metrics(run)[-1]["val_loss"])


def test_sigkill_then_resume_equals_an_uninterrupted_run(
    augmented: Path, small_mnist: Path, reference: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = [f"--data-root={small_mnist}", f"--output-dir={run}", "--device=cpu"]
    process = subprocess.Popen(
        [sys.executable, "train.py", *args], cwd=augmented, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(run / "checkpoint-epoch0001-*.pt", process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (run / "summary.json").exists()
    done = run_train(augmented, *args, "--resume")
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stdout
    _assert_same_run(run, reference)


def test_ctrl_c_saves_a_checkpoint_and_resume_equals_an_uninterrupted_run(
    augmented: Path, small_mnist: Path, reference: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = [f"--data-root={small_mnist}", f"--output-dir={run}", "--device=cpu"]
    process = subprocess.Popen(
        [sys.executable, "train.py", *args, "--log-interval=1e-9"],  # a progress line after every step
        cwd=augmented,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # 1,350 / 50 = 27 steps per epoch
        if line.startswith("epoch 2/3  step 3/27 "):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "stopped by SIGINT" in out
    assert not (run / "summary.json").exists()
    saved = _final_state(run)
    assert saved["step"] >= 30  # the steps since the epoch-1 checkpoint were saved
    done = run_train(augmented, *args, "--resume")
    assert done.returncode == 0, done.stderr
    _assert_same_run(run, reference)


def test_a_diverging_run_stops_with_the_step_and_keeps_the_last_good_checkpoint(
    small_mnist: Path, tmp_path: Path
) -> None:
    # From epoch 2 on the learning rate is multiplied by a million: the loss blows up.
    text = LENET.read_text().replace("scheduler: {type: cosine}", "scheduler: {type: step, step_size: 1, gamma: 1.0e6}")
    build = build_spec(text, tmp_path, name="diverge.yaml")
    run = tmp_path / "run"
    done = run_train(build, f"--data-root={small_mnist}", f"--output-dir={run}", "--device=cpu", "--epochs=3")
    assert done.returncode == 1
    assert "error: the loss is nan or inf at step " in done.stderr
    step = int(done.stderr.split("at step ")[1].split()[0])
    assert 22 < step <= 44  # in epoch 2 (22 steps per epoch)
    kept = checkpoints(run)
    assert [p.name for p in kept] == ["checkpoint-epoch0001-step000000022.pt"]
    assert str(kept[0]) in done.stderr
    state = torch.load(kept[0], weights_only=True)["model"]
    assert all(torch.isfinite(t).all() for t in state.values())
    assert [row["epoch"] for row in metrics(run)] == [1]


def test_runs_of_other_specs_and_unresumed_runs_are_refused(lenet: Path, small_mnist: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = [f"--data-root={small_mnist}", "--device=cpu", "--epochs=1"]
    assert run_train(lenet, *common, f"--output-dir={run}").returncode == 0
    before = sorted(p.name for p in run.iterdir())

    again = run_train(lenet, *common, f"--output-dir={run}")
    assert again.returncode == 2
    assert "already holds checkpoints: pass --resume" in again.stderr

    other = build_spec(LENET.read_text().replace("epochs: 10", "epochs: 9"), tmp_path, name="other.yaml")
    refused = run_train(other, *common, f"--output-dir={run}")
    assert refused.returncode == 2
    assert "holds a run of another spec" in refused.stderr

    checkpoint = checkpoints(run)[-1]
    foreign = run_train(other, *common, f"--output-dir={tmp_path / 'fresh'}", f"--resume={checkpoint}")
    assert foreign.returncode == 2
    assert f"{checkpoint} was trained from another spec" in foreign.stderr
    assert sorted(p.name for p in run.iterdir()) == before  # nothing lost or overwritten


def test_help_needs_no_data_and_no_torchvision(lenet: Path, tmp_path: Path) -> None:
    code = (
        "import runpy, sys; sys.modules['torchvision'] = None; sys.argv = ['train.py', '--help']; "
        "runpy.run_path('train.py', run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=lenet, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    for flag in ("--epochs", "--batch-size", "--lr", "--device", "--data-root", "--output-dir", "--resume"):
        assert flag in done.stdout
    for flag in ("--seed", "--num-workers", "--amp", "--compile", "--download"):
        assert flag in done.stdout
    assert not (lenet / "runs").exists()


def test_missing_data_names_the_path_and_the_download_flag(lenet: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_train(lenet, f"--data-root={empty}", f"--output-dir={tmp_path / 'run'}", "--no-download")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: MNIST not found in {empty / 'MNIST' / 'raw'} ")
    assert "--download" in done.stderr
    assert "Traceback" not in done.stderr
    assert not checkpoints(tmp_path / "run")


def test_dataset_py_runs_on_its_own(lenet: Path, small_mnist: Path, tmp_path: Path) -> None:
    (tmp_path / "data").symlink_to(small_mnist)  # the spec's data root is ./data
    done = subprocess.run(
        [sys.executable, str(lenet / "dataset.py")], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "train: 1350 samples; the first is Image (1, 32, 32) torch.uint8, target 5",
        "val: 150 samples; the first is Image (1, 32, 32) torch.uint8, target 9",
        "test: 300 samples; the first is Image (1, 32, 32) torch.uint8, target 7",
    ]
