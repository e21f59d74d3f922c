"""Fault tolerance of the generated train.py, for real on a few hundred MNIST digits (CPU, deterministic):
SIGKILL at every checkpoint boundary and in the middle of writing one, damaged and foreign checkpoints
(with a pickled-code canary), a full disk during a save, and a torchrun worker killed and restarted.

Faults are injected from outside the generated code: tests/fault_hooks/sitecustomize.py is put on
PYTHONPATH and told by SPECC_FAULT what to break (kill while torch.save writes, after the rename, fail a
write with ENOSPC, kill a DDP rank after a step). Runs are tiny: 270 training digits, 6 steps an epoch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.mnist_data import (
    REPO,
    build_spec,
    checkpoints,
    free_port,
    metrics,
    without_timing,
    write_mnist,
)

HOOKS = REPO / "tests" / "fault_hooks"

# Random augmentation and dropout: an exact resume must restore every random generator too.
SPEC = """
specc: 1
name: FaultNet
input: {shape: [1, 28, 28]}
layers:
  - {op: conv2d, out_channels: 6, kernel_size: 5}
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

CANARY_CODE = "import pathlib; pathlib.Path({path!r}).write_text('pwned')"


class _Canary:
    """Unpickling this runs code that creates a file: it must never be unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (CANARY_CODE.format(path=str(self.path)),))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("digits"), n_train=300, n_test=100).parents[1]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_spec(SPEC, tmp_path_factory.mktemp("faultnet"), name="faultnet.yaml")


def _train(
    build: Path,
    data: Path,
    run: Path,
    *args: str,
    fault: str | None = None,
    timeout: float = 240,
):
    env = dict(os.environ)
    env.pop("SPECC_FAULT", None)
    if fault is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOKS), env.get("PYTHONPATH")]))
        env["SPECC_FAULT"] = fault
    return subprocess.run(
        [
            sys.executable,
            "train.py",
            f"--data-root={data}",
            f"--output-dir={run}",
            "--device=cpu",
            *args,
        ],
        cwd=build,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def reference(build: Path, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run: checkpoints of epochs 2 and 3 kept."""
    run = tmp_path_factory.mktemp("reference") / "run"
    done = _train(build, data, run, "--keep-checkpoints=2")
    assert done.returncode == 0, done.stderr
    assert [p.name for p in checkpoints(run)] == [
        "checkpoint-epoch0002-step000000012.pt",
        "checkpoint-epoch0003-step000000018.pt",
    ]
    return run


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_weights(mine: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert mine["model"].keys() == theirs["model"].keys()
    for name, tensor in theirs["model"].items():
        assert torch.equal(mine["model"][name], tensor), name
    for key, state in theirs["optimizer"]["state"].items():
        assert torch.equal(mine["optimizer"]["state"][key]["momentum_buffer"], state["momentum_buffer"])
    assert (mine["epoch"], mine["step"]) == (theirs["epoch"], theirs["step"])


def _assert_same_run(run: Path, reference: Path) -> None:
    """Bit for bit the reference's final weights, optimizer state, metrics and test result."""
    _assert_same_weights(_load(checkpoints(run)[-1]), _load(checkpoints(reference)[-1]))
    assert without_timing(metrics(run)) == without_timing(metrics(reference))
    assert (run / "summary.json").read_text() == (reference / "summary.json").read_text()


def _assert_only_complete_checkpoints(run: Path, epochs: list[int]) -> None:
    """Every checkpoint-*.pt in `run` is complete and loads; temporary files are all that is partial."""
    found = checkpoints(run)
    assert [_load(path)["epoch"] for path in found] == epochs
    assert all(path.name.startswith("checkpoint-") for path in found)


def _killed(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr


# ----------------------------------------------------------------------------- SIGKILL and resume


def test_sigkill_at_every_checkpoint_boundary_and_mid_write_then_resume_equals_an_uninterrupted_run(
    build: Path, data: Path, reference: Path, tmp_path: Path
) -> None:
    """Each epoch's checkpoint is killed in turn: half written, fully written but not renamed, and just
    renamed (before older ones are pruned); every --resume continues from the newest complete one.
    """
    run = tmp_path / "run"
    keep = "--keep-checkpoints=2"

    # Killed while writing the first checkpoint: only a temporary file is left, and it is never loaded.
    _killed(_train(build, data, run, keep, fault="mid:1"))
    assert not checkpoints(run)
    (partial,) = run.glob(".checkpoint-epoch0001-*.tmp")  # the half-written file, under a temporary name
    refused = _train(build, data, run, keep, "--resume")
    assert refused.returncode == 2
    assert f"--resume: {run} holds no checkpoint" in refused.stderr
    assert f"removed {partial}: a write that an interrupted run left unfinished" in refused.stdout
    assert not partial.exists()  # the next run cleans up what the killed one left
    _killed(_train(build, data, run, keep, fault="written:1"))  # no complete checkpoint: start afresh
    assert not checkpoints(run)
    _killed(_train(build, data, run, keep, fault="renamed:1"))
    _assert_only_complete_checkpoints(run, [1])

    newest = {
        1: "checkpoint-epoch0001-step000000006.pt",
        2: "checkpoint-epoch0002-step000000012.pt",
    }
    for epoch in (2, 3):
        for mode in ("mid", "written", "renamed"):
            done = _train(build, data, run, keep, "--resume", fault=f"{mode}:{epoch}")
            _killed(done)
            assert f"resuming from {run / newest[epoch - 1]} " in done.stdout, done.stdout
            # Killed before the rename: the older checkpoints only. After it: the new one too (killed
            # before --keep-checkpoints=2 pruned the oldest, which a later save does).
            _assert_only_complete_checkpoints(run, list(range(1, epoch + (mode == "renamed"))))
            assert not (run / "summary.json").exists()

    done = _train(build, data, run, keep, "--resume")
    assert done.returncode == 0, done.stderr
    assert f"resuming from {run / 'checkpoint-epoch0003-step000000018.pt'} " in done.stdout
    _assert_same_run(run, reference)


# ------------------------------------------------------------------- damaged and foreign checkpoints


def _bad_bytes(kind: str, good: Path, canary: Path) -> bytes:
    if kind == "truncated":
        return good.read_bytes()[: good.stat().st_size // 2]
    if kind == "garbage":
        return bytes(range(256)) * 16
    payload = _load(good)
    payload["model"] = _Canary(canary)  # pickled code, in an otherwise well-formed checkpoint
    path = canary.with_name("evil.pt")
    torch.save(payload, path)
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["truncated", "garbage", "pickled_code"])
def test_a_damaged_newest_checkpoint_is_skipped_and_the_previous_one_resumes_exactly(
    kind: str, build: Path, data: Path, reference: Path, tmp_path: Path
) -> None:
    run, canary = tmp_path / "run", tmp_path / "canary"
    shutil.copytree(reference, run)
    (run / "summary.json").unlink()
    newest = checkpoints(run)[-1]
    newest.write_bytes(_bad_bytes(kind, newest, canary))

    done = _train(build, data, run, "--keep-checkpoints=2", "--resume")
    assert done.returncode == 0, done.stderr
    assert f"warning: skipping {newest}: " in done.stdout
    assert f"resuming from {run / 'checkpoint-epoch0002-step000000012.pt'} " in done.stdout
    assert not canary.exists()  # nothing in the file was executed
    _assert_same_run(run, reference)  # epoch 3 trained again, to the same weights


def test_damaged_foreign_and_code_carrying_checkpoints_are_refused_with_a_clear_message(
    build: Path, data: Path, reference: Path, tmp_path: Path
) -> None:
    good = checkpoints(reference)[-1]
    canary = tmp_path / "canary"
    expected = {
        "truncated": "",  # torch's own words: "[Errno 22] Invalid argument" here
        "garbage": "",
        "pickled_code": "(loaded with weights_only=True): it refers to exec\n",
    }
    for kind, reason in expected.items():
        bad = tmp_path / f"{kind}.pt"
        bad.write_bytes(_bad_bytes(kind, good, canary))
        done = _train(build, data, tmp_path / f"run-{kind}", f"--resume={bad}")
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(
            f"error: --resume {bad}: refused: damaged, or it holds more than tensors and plain data "
            "(loaded with weights_only=True): "
        ), done.stderr
        assert reason in done.stderr
        assert "Traceback" not in done.stderr
        assert not canary.exists()
        assert not checkpoints(tmp_path / f"run-{kind}")

    # A well-formed checkpoint of another spec: refused by name, also when it is the newest in the run.
    foreign = _load(good)
    foreign["spec_sha256"] = "0" * 64
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    torch.save(foreign, run / "checkpoint-epoch0004-step000000024.pt")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    done = _train(build, data, run, "--resume")
    assert done.returncode == 2
    newest = run / "checkpoint-epoch0004-step000000024.pt"
    assert f"error: {newest} was trained from another spec (sha256 000000000000...)" in done.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing lost or overwritten


# ------------------------------------------------------------------------------------- full disk


@pytest.mark.parametrize("fault", ["enospc", "fsync"])
def test_a_full_disk_during_a_save_fails_clearly_and_the_previous_checkpoint_resumes_exactly(
    fault: str, build: Path, data: Path, reference: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    done = _train(build, data, run, "--keep-checkpoints=2", fault=f"{fault}:2")
    assert done.returncode == 2, done.stderr
    first = run / "checkpoint-epoch0001-step000000006.pt"
    assert done.stderr.startswith(
        f"error: could not write {run / 'checkpoint-epoch0002-step000000012.pt'} (is the disk full?): "
    ), done.stderr
    assert f"The last complete checkpoint is {first}. Free some space, then --resume." in done.stderr
    assert "Traceback" not in done.stderr
    if fault == "fsync":
        assert "No space left on device" in done.stderr
    assert not list(run.glob(".*.tmp"))  # the partial file is cleaned up
    _assert_only_complete_checkpoints(run, [1])

    done = _train(build, data, run, "--keep-checkpoints=2", "--resume")
    assert done.returncode == 0, done.stderr
    assert f"resuming from {first} " in done.stdout
    _assert_same_run(run, reference)


# ---------------------------------------------------------------------------- torchrun restarts


def _torchrun(build: Path, data: Path, run: Path, *args: str, fault: str | None = None):
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    env = dict(os.environ)
    env.pop("SPECC_FAULT", None)
    if fault is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOKS), env.get("PYTHONPATH")]))
        env["SPECC_FAULT"] = fault
    return subprocess.run(
        [
            *launcher,
            "--nproc_per_node=2",
            f"--master_port={free_port()}",
            *args,
            "train.py",
            f"--data-root={data}",
            f"--output-dir={run}",
            "--device=cpu",
        ],
        cwd=build,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _restarted_workers(build: Path, data: Path, run: Path) -> list[subprocess.Popen[str]]:
    """The two worker processes as torchrun starts them on its first restart (TORCHELASTIC_RESTART_COUNT=1),
    with train.py's arguments unchanged: no --resume."""
    env = {k: v for k, v in os.environ.items() if k != "SPECC_FAULT"}
    env.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
        WORLD_SIZE="2",
        LOCAL_WORLD_SIZE="2",
    )
    env.update(TORCHELASTIC_RESTART_COUNT="1", OMP_NUM_THREADS="1")
    return [
        subprocess.Popen(
            [
                sys.executable,
                "train.py",
                f"--data-root={data}",
                f"--output-dir={run}",
                "--device=cpu",
            ],
            cwd=build,
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]


def test_a_torchrun_restart_after_a_killed_worker_resumes_to_the_uninterrupted_weights(
    build: Path, data: Path, tmp_path: Path
) -> None:
    uninterrupted = tmp_path / "uninterrupted"
    done = _torchrun(build, data, uninterrupted)
    assert done.returncode == 0, done.stdout + done.stderr

    # Rank 1 is SIGKILLed after step 5 (3 steps an epoch): in epoch 2, after the epoch-1 checkpoint.
    run = tmp_path / "run"
    done = _torchrun(build, data, run, "--max-restarts=0", fault="step:5")
    assert done.returncode != 0
    assert "exitcode  : -9" in done.stderr, done.stderr
    assert [p.name for p in checkpoints(run)] == ["checkpoint-epoch0001-step000000003.pt"]

    # What torchrun --max-restarts=1 then does: start both workers again with the same arguments.
    workers = _restarted_workers(build, data, run)
    outputs = [worker.communicate(timeout=240) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert f"resuming from {run / 'checkpoint-epoch0001-step000000003.pt'} " in outputs[0][0], outputs[0]
    summary = json.loads((run / "summary.json").read_text())
    first, second = summary["weights_sha256"]
    assert first == second  # both ranks ended with the same weights...
    assert summary == json.loads((uninterrupted / "summary.json").read_text())  # ...the uninterrupted run's
    _assert_same_weights(_load(checkpoints(run)[-1]), _load(checkpoints(uninterrupted)[-1]))
    assert without_timing(metrics(run)) == without_timing(metrics(uninterrupted))


def test_a_restart_before_the_first_checkpoint_starts_afresh(build: Path, data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    workers = _restarted_workers(build, data, run)
    outputs = [worker.communicate(timeout=240) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert "resuming from" not in outputs[0][0]
    assert json.loads((run / "summary.json").read_text())["steps"] == 9


def test_torchrun_max_restarts_completes_the_job(build: Path, data: Path, tmp_path: Path) -> None:
    uninterrupted = tmp_path / "uninterrupted"
    assert _torchrun(build, data, uninterrupted).returncode == 0
    run = tmp_path / "run"
    done = _torchrun(build, data, run, "--max-restarts=1", fault="step:5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resuming from {run / 'checkpoint-epoch0001-step000000003.pt'} " in done.stdout, done.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary == json.loads((uninterrupted / "summary.json").read_text())
