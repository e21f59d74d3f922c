"""Attention and sequence models from specs: nn.Transformer, torchvision's ViT-B/16 and a small causal GPT.

Parity: identical state_dict keys and shapes, strict loading of the reference's weights, equal eval-mode
outputs, equal parameter counts. MACs: specc's count (projections, both attention products, feed-forward,
convolutions) against torch's FlopCounterMode, within 2% (attention runs on sdpa's math backend there, so
that the counter sees the matrix products; the fused CPU kernels are invisible to it).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from specc.compiler import analyze
from specc.summary import parameters
from tests.generated import ROOT, build, import_generated

SPECS = ROOT / "specs"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("attention")
    yield {
        stem: import_generated(build(SPECS / f"{stem}.yaml", root / stem))
        for stem in ("transformer", "vit_b_16", "char_gpt")
    }


def _same_keys_and_load(generated: torch.nn.Module, reference: torch.nn.Module) -> None:
    ours = {k: tuple(v.shape) for k, v in generated.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours == theirs
    generated.load_state_dict(reference.state_dict(), strict=True)


def _flops(model: torch.nn.Module, *inputs: torch.Tensor) -> int:
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    counter = FlopCounterMode(display=False)
    try:
        with sdpa_kernel(SDPBackend.MATH), counter, torch.no_grad():
            model(*inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)
    return counter.get_total_flops()


def test_transformer_is_nn_transformer(built: dict[str, Any]) -> None:
    torch.manual_seed(0)
    reference = torch.nn.Transformer(d_model=512, nhead=8, num_encoder_layers=6, batch_first=True).eval()
    generated = built["transformer"].build_model().eval()
    _same_keys_and_load(generated, reference)
    src, tgt = torch.randn(2, 10, 512), torch.randn(2, 20, 512)
    with torch.no_grad():
        assert torch.equal(generated(src, tgt), reference(src, tgt))
        # torch's default layout (sequence first) computes the same, transposed
        with warnings.catch_warnings():  # sequence first: torch warns that nested tensors need batch first
            warnings.simplefilter("ignore")
            sequence_first = torch.nn.Transformer(d_model=512, nhead=8, num_encoder_layers=6).eval()
        sequence_first.load_state_dict(reference.state_dict())
        expected = sequence_first(src.transpose(0, 1), tgt.transpose(0, 1)).transpose(0, 1)
        assert (generated(src, tgt) - expected).abs().max().item() < 1e-4
    graph = analyze(SPECS / "transformer.yaml").graph
    count = sum(p.numel() for p in generated.parameters())
    assert count == graph.param_count == 44_140_544
    assert list(parameters(graph).items()) == [(n, p.numel()) for n, p in generated.named_parameters()]


def test_vit_b_16_is_torchvisions(built: dict[str, Any]) -> None:
    torch.manual_seed(0)
    reference = torchvision.models.vit_b_16(weights=None).eval()
    generated = built["vit_b_16"].build_model().eval()
    _same_keys_and_load(generated, reference)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (generated(x) - reference(x)).abs().max().item() <= 1e-5
    graph = analyze(SPECS / "vit_b_16.yaml").graph
    assert sum(p.numel() for p in generated.parameters()) == graph.param_count == 86_567_656
    assert list(parameters(graph).items()) == [(n, p.numel()) for n, p in generated.named_parameters()]


def test_char_gpt_is_causal_with_tied_embeddings(built: dict[str, Any]) -> None:
    module = built["char_gpt"]
    torch.manual_seed(0)
    model = module.build_model().eval()
    assert model.lm_head.weight is model.tok_emb.weight
    graph = analyze(SPECS / "char_gpt.yaml").graph
    named = [(n, p.numel()) for n, p in model.named_parameters()]
    assert "lm_head.weight" not in dict(named) and "lm_head.weight" in model.state_dict()
    assert list(parameters(graph).items()) == named
    assert graph.param_count == sum(p.numel() for p in model.parameters()) == 818_048

    x = torch.randint(0, 65, (2, 128))
    changed = x.clone()
    changed[:, 100:] = (changed[:, 100:] + 1) % 65
    with torch.no_grad():
        logits, after = model(x), model(changed)
        assert logits.shape == (2, 128, 65)
        assert torch.allclose(logits[:, :100], after[:, :100], atol=1e-5), "a position saw a later token"
        assert not torch.allclose(logits[:, 100:], after[:, 100:])
        # any context up to 128 characters (sampling starts from a short prompt)
        assert torch.allclose(model(x[:, :10]), logits[:, :10], atol=1e-5)


def test_char_gpt_trains(built: dict[str, Any]) -> None:
    """Next-character loss goes down on a repeating text: the tied weights and attention get gradients."""
    torch.manual_seed(0)
    model = built["char_gpt"].build_model()
    text = torch.tensor([i % 7 for i in range(33 * 4)]).view(4, 33)
    x, y = text[:, :-1], text[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8, losses
    assert model.lm_head.weight is model.tok_emb.weight


@pytest.mark.parametrize("stem", ["transformer", "vit_b_16", "char_gpt"])
def test_macs_match_flop_counter(stem: str, built: dict[str, Any]) -> None:
    module = built[stem]
    model = module.build_model().eval()
    graph = analyze(SPECS / f"{stem}.yaml").graph
    flops = _flops(model, *module.example_inputs(1))
    assert abs(graph.macs - flops / 2) / (flops / 2) < 0.02, (graph.macs, flops / 2)


def test_summary_counts_attention_products() -> None:
    """ViT-B/16 by hand: the patch convolution, 12 layers of (q, k, v, out projections + Q K^T + weights @ V +
    MLP) over 197 tokens, the head. The attention products are 0.72 of its 17.56 GMACs."""
    graph = analyze(SPECS / "vit_b_16.yaml").graph
    tokens, width, mlp = 197, 768, 3072
    products = 2 * tokens * tokens * width  # Q K^T and weights @ V, all 12 heads together
    layer = 4 * tokens * width * width + products + 2 * tokens * width * mlp
    patches = 768 * 196 * 3 * 16 * 16
    assert graph.macs == patches + 12 * layer + width * 1000 == 17_563_828_224
    assert 12 * products == 715_327_488


def test_diagrams_of_sequence_models(tmp_path: Path) -> None:
    from specc.graph import diagram, to_mermaid

    for stem in ("transformer", "vit_b_16", "char_gpt"):
        text = to_mermaid(diagram(analyze(SPECS / f"{stem}.yaml").graph))
        assert text.startswith("flowchart TD")
    vit = to_mermaid(diagram(analyze(SPECS / "vit_b_16.yaml").graph))
    assert "encoder.layers.encoder_layer_11" in vit and "class_token: parameter" in vit
