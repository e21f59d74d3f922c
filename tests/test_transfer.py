"""Transfer learning through generated code, without network: local weight files and a stubbed torchvision hub."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch
import torchvision

from specc.compiler import analyze
from tests.generated import ROOT, build, build_text, import_generated

FINETUNE = ROOT / "specs" / "resnet18_finetune.yaml"


@pytest.fixture(scope="module")
def finetune(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return import_generated(build(FINETUNE, tmp_path_factory.mktemp("finetune") / "out"))


@pytest.fixture(scope="module")
def imagenet_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision resnet18 state_dict saved as a user would save downloaded weights."""
    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(state, path)
    return path, state


def test_loads_everything_but_the_new_head(finetune: ModuleType, imagenet_file: Any) -> None:
    path, reference = imagenet_file
    model = finetune.build_model(weights_file=str(path))
    state = model.state_dict()
    assert set(state) == set(reference)
    for key, value in reference.items():
        if key.startswith("fc."):
            assert state[key].shape[0] == 2  # the new 2-class head, not ImageNet's 1000
        else:
            assert torch.equal(state[key], value), key


def test_only_the_head_is_trainable(finetune: ModuleType, imagenet_file: Any) -> None:
    model = finetune.build_model(weights_file=str(imagenet_file[0]))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == analyze(FINETUNE).transfer.trainable_params


def test_training_step_changes_only_unfrozen_weights(finetune: ModuleType, imagenet_file: Any) -> None:
    torch.manual_seed(0)
    model = finetune.build_model(weights_file=str(imagenet_file[0]))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 0, 1])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"fc.weight", "fc.bias"}


def test_weights_of_another_architecture_are_refused(finetune: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(RuntimeError, match="unexpected"):
        finetune.build_model(weights_file=str(path))


class Canary:
    """Unpickling this would create a file: weights_only=True must refuse before that."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


def test_pickled_code_in_a_weight_file_never_runs(finetune: ModuleType, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": Canary(str(canary))}, path)
    with pytest.raises(pickle.UnpicklingError):
        finetune.build_model(weights_file=str(path))
    assert not canary.exists()


def test_torchvision_weights_path(finetune: ModuleType, imagenet_file: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """pretrained=True asks torchvision for the named weights (stubbed here: no network)."""
    calls: list[Any] = []

    def get_state_dict(**kwargs: Any) -> dict[str, torch.Tensor]:
        calls.append(kwargs)
        return imagenet_file[1]

    def get_model_weights(name: str) -> dict[str, Any]:
        calls.append(name)
        return {"IMAGENET1K_V1": SimpleNamespace(get_state_dict=get_state_dict)}

    monkeypatch.setattr(torchvision.models, "get_model_weights", get_model_weights)
    model = finetune.build_model()
    assert calls == ["resnet18", {"progress": True, "check_hash": True, "weights_only": True}]
    assert torch.equal(model.state_dict()["conv1.weight"], imagenet_file[1]["conv1.weight"])


def test_random_init_still_freezes(finetune: ModuleType) -> None:
    model = finetune.build_model(pretrained=False)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]


def test_replace_with_a_new_head_block(tmp_path: Path, imagenet_file: Any) -> None:
    """`replace` swaps a layer for another (here a dropout + linear head); only the new head starts fresh."""
    module = import_generated(
        build_text(
            """
extends: resnet18
name: ResNet18Head
replace:
  fc:
    op: sequential
    layers:
      - {op: dropout, p: 0.2}
      - {op: linear, out_features: 5}
pretrained: {file: unused.pth, exclude: ["fc.*"]}
freeze: ["layer1.*", "conv1.*", "bn1.*"]
""",
            tmp_path,
        )
    )
    model = module.build_model(weights_file=str(imagenet_file[0])).eval()
    assert torch.equal(model.layer4[1].bn2.running_var, imagenet_file[1]["layer4.1.bn2.running_var"])
    assert "fc.1.weight" in model.state_dict()
    assert not model.conv1.weight.requires_grad and model.layer2[0].conv1.weight.requires_grad
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
