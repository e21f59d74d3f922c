"""Specs of torchvision's classification models produce code that *is* those models.

For each: identical state_dict keys and shapes, strict loading of torchvision's weights, equal
eval-mode outputs, equal parameter counts, and MACs within 1% of torchvision's published figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from specc.compiler import analyze
from tests.generated import ROOT, build, import_generated

# spec -> (torchvision constructor kwargs, parameter count, published GMACs or None)
ZOO = {
    "alexnet": ("alexnet", {}, 61_100_840, 0.71),
    "vgg11": ("vgg11", {}, 132_863_336, 7.61),
    "vgg16": ("vgg16", {}, 138_357_544, 15.47),
    "vgg16_bn": ("vgg16_bn", {}, 138_365_992, 15.47),
    "resnet18": ("resnet18", {}, 11_689_512, 1.81),
    "resnet34": ("resnet34", {}, 21_797_672, 3.66),
    "resnet50": ("resnet50", {}, 25_557_032, 4.09),
    "resnet101": ("resnet101", {}, 44_549_160, 7.80),
    "googlenet": ("googlenet", {"aux_logits": False, "transform_input": False, "init_weights": False}, 6_624_904, 1.50),
    "resnext50_32x4d": ("resnext50_32x4d", {}, 25_028_904, 4.23),
    "wide_resnet50_2": ("wide_resnet50_2", {}, 68_883_240, 11.40),
}


@pytest.mark.parametrize("stem", sorted(ZOO))
def test_matches_torchvision(stem: str, tmp_path: Path) -> None:
    factory, kwargs, expected_params, published_gmacs = ZOO[stem]
    spec = ROOT / "specs" / f"{stem}.yaml"
    torch.manual_seed(0)
    reference = getattr(torchvision.models, factory)(weights=None, **kwargs).eval()
    generated = import_generated(build(spec, tmp_path / stem)).build_model().eval()

    ours = {k: tuple(v.shape) for k, v in generated.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours == theirs
    generated.load_state_dict(reference.state_dict(), strict=True)

    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        difference = (generated(x) - reference(x)).abs().max().item()
    assert difference <= 1e-5

    graph = analyze(spec).graph
    count = sum(p.numel() for p in generated.parameters())
    assert count == expected_params == graph.param_count
    if published_gmacs is not None:
        assert abs(graph.macs / 1e9 - published_gmacs) / published_gmacs < 0.01
