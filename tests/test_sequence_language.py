"""The language constructs of sequence models, each in a small inline spec that is built, imported and run:
named children of sequentials and repeats, weight tying, nn.Parameter nodes with expand/concat/indexing,
masks as extra inputs, named block dims, positional encodings, causal attention."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from specc.compiler import analyze
from specc.summary import parameters
from tests.generated import build_text, import_generated


def _build(text: str, tmp_path: Path) -> tuple[torch.nn.Module, object, object]:
    """(model in eval mode, the generated module, the inferred graph)."""
    out = build_text(text, tmp_path)
    module = import_generated(out)
    torch.manual_seed(0)
    return module.build_model().eval(), module, analyze(tmp_path / "spec.yaml").graph


def _source(tmp_path: Path) -> str:
    return (tmp_path / "out" / "model.py").read_text()


def test_named_sequential_children_and_repeats(tmp_path: Path) -> None:
    model, _, graph = _build(
        """
name: Named
input: {shape: [4, 8]}
blocks:
  Layer:
    layers:
      - {op: linear, name: fc, out_features: in_features}
layers:
  - {block: Layer, name: layers, repeat: 2, names: "layer_{i}"}
  - op: sequential
    name: heads
    layers:
      - {op: layer_norm}
      - {op: linear, name: head, out_features: 3}
""",
        tmp_path,
    )
    names = [name for name, _ in model.named_parameters()]
    assert names == [
        "layers.layer_0.fc.weight",
        "layers.layer_0.fc.bias",
        "layers.layer_1.fc.weight",
        "layers.layer_1.fc.bias",
        "heads.0.weight",
        "heads.0.bias",
        "heads.head.weight",
        "heads.head.bias",
    ]
    assert list(parameters(graph)) == names
    assert model(torch.randn(2, 4, 8)).shape == (2, 4, 3)
    assert "from collections import OrderedDict" in _source(tmp_path)


def test_weight_tying_counts_the_shared_tensor_once(tmp_path: Path) -> None:
    model, _, graph = _build(
        """
name: Tied
input: {shape: [6], dtype: int64}
layers:
  - {op: embedding, name: embed, num_embeddings: 11, embedding_dim: 4}
  - {op: linear, name: lm_head, out_features: 11, tie: embed}
""",
        tmp_path,
    )
    assert model.lm_head.weight is model.embed.weight
    assert [(n, p.numel()) for n, p in model.named_parameters()] == list(parameters(graph).items())
    assert graph.param_count == sum(p.numel() for p in model.parameters()) == 11 * 4 + 11
    assert graph.node("lm_head").param_count == 11  # its bias; the weight is the embedding's
    assert model(torch.randint(0, 11, (2, 6))).shape == (2, 6, 11)


def test_weight_tying_inside_a_block(tmp_path: Path) -> None:
    model, _, graph = _build(
        """
name: TiedBlock
input: {shape: [5, 8]}
blocks:
  Autoencoder:
    layers:
      - {op: linear, name: encode, out_features: 8, bias: false}
      - {op: linear, name: decode, out_features: 8, bias: false, tie: encode}
layers:
  - {block: Autoencoder, name: ae, repeat: 2}
""",
        tmp_path,
    )
    for layer in model.ae:
        assert layer.decode.weight is layer.encode.weight
    assert graph.param_count == sum(p.numel() for p in model.parameters()) == 2 * 64


def test_parameter_expand_concat_select(tmp_path: Path) -> None:
    """A class token prepended to a sequence, position embeddings added (broadcast over the batch)."""
    model, _, graph = _build(
        """
name: Tokens
input: {shape: [6, 8]}
layers:
  - {op: parameter, name: class_token, shape: [1, 8]}
  - {op: expand, name: batch_token, in: [class_token, x]}
  - {op: concat, name: sequence, in: [batch_token, x], dim: 1}
  - {op: parameter, name: positions, shape: [7, 8], init: normal, std: 0.02}
  - {op: add, name: with_positions, in: [sequence, positions]}
  - {op: select, name: first, dim: 1, index: 0}
""",
        tmp_path,
    )
    assert dict(model.named_parameters())["class_token"].shape == (1, 1, 8)
    assert dict(model.named_parameters())["positions"].shape == (1, 7, 8)
    assert list(parameters(graph)) == ["class_token", "positions"]
    x = torch.randn(3, 6, 8)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 8)
    assert torch.allclose(out, (model.class_token + model.positions[:, :1]).expand(3, -1, -1)[:, 0])
    source = _source(tmp_path)
    assert "self.class_token.expand(x.shape[0], -1, -1)  # (B, 1, 8)" in source


def test_masks_are_extra_inputs(tmp_path: Path) -> None:
    """A key padding mask named by a parameter: padded keys do not change the other positions' outputs."""
    model, module, _ = _build(
        """
name: Masked
inputs:
  seq: {shape: [5, 8]}
  pad: {shape: [5], dtype: bool}
blocks:
  Heads:
    dims: [length, width]
    params: {heads: int}
    layers:
      - {op: unflatten, name: split, dim: -1, sizes: [heads, width // heads]}
      - {op: transpose, name: per_head, dim0: 1, dim1: 2}
layers:
  - {op: multihead_attention, name: attn, in: seq, num_heads: 2, key_padding_mask: pad}
  - {block: Heads, name: heads, args: {heads: 2}}
  - {op: scaled_dot_product_attention, name: sdpa, in: [heads, heads, heads], key_padding_mask: pad}
  - {op: transformer_encoder, name: encoder, in: seq, nhead: 2, num_layers: 1, dim_feedforward: 16,
     key_padding_mask: pad}
  - {block: Heads, name: encoded_heads, in: encoder, args: {heads: 2}}
  - {op: concat, name: out, in: [sdpa, encoded_heads], dim: 1}
""",
        tmp_path,
    )
    x = torch.randn(2, 5, 8)
    pad = torch.tensor([[False, False, False, True, True]] * 2)
    changed = x.clone()
    changed[:, 3:] = torch.randn(2, 2, 8)
    with torch.no_grad():
        out, other = model(x, pad), model(changed, pad)
    assert out.shape == (2, 4, 5, 4)
    attended = out[:, :2, :3]  # the attention's output at unpadded positions
    assert torch.allclose(attended, other[:, :2, :3], atol=1e-5)
    source = _source(tmp_path)
    assert "self.attn(seq, seq, seq, key_padding_mask=pad, need_weights=False)[0]" in source
    assert "attn_mask=~pad[:, None, None, :]" in source
    assert "src_key_padding_mask=pad" in source
    assert len(module.example_inputs(2)) == 2


def test_block_dims_name_the_input_sizes(tmp_path: Path) -> None:
    _build(
        """
name: Dims
input: {shape: [10, 16]}
blocks:
  Mlp:
    dims: [seq_len, width]
    params: {ratio: int}
    layers:
      - {op: linear, name: up, out_features: width * ratio}
      - {op: gelu, name: act}
      - {op: linear, name: down, out_features: width}
layers:
  - {block: Mlp, name: mlp, args: {ratio: 4}}
""",
        tmp_path,
    )
    source = _source(tmp_path)
    assert "def __init__(self, width: int, ratio: int) -> None:" in source
    assert "self.up = nn.Linear(width, width * ratio)" in source
    assert "# x: (B, seq_len, width)" in source
    assert "self.mlp = Mlp(16, ratio=4)" in source


def test_function_ops_in_blocks_print_values(tmp_path: Path) -> None:
    """forward cannot see a block's __init__ parameters: instances whose function ops differ get classes
    of their own."""
    model, _, _ = _build(
        """
name: Pieces
input: {shape: [4, 12]}
blocks:
  Piece:
    params: {index: int}
    layers:
      - {op: chunk, name: piece, chunks: 3, dim: -1, index: index}
      - {op: linear, name: fc, out_features: 4}
layers:
  - {block: Piece, name: first, args: {index: 0}}
  - {block: Piece, name: second, in: x, args: {index: 2}}
  - {op: add, name: out, in: [first, second]}
""",
        tmp_path,
    )
    source = _source(tmp_path)
    assert "class Piece(nn.Module)" in source and "class Piece_2(nn.Module)" in source
    assert "x.chunk(3, dim=-1)[0]" in source and "x.chunk(3, dim=-1)[2]" in source
    x = torch.randn(2, 4, 12)
    with torch.no_grad():
        expected = model.first.fc(x[..., :4]) + model.second.fc(x[..., 8:])
        assert torch.allclose(model(x), expected)


def test_sinusoidal_positional_encoding(tmp_path: Path) -> None:
    model, _, graph = _build(
        """
name: Sinusoid
input: {shape: [7, 6]}
layers:
  - {op: positional_encoding, name: pos, max_len: 50}
""",
        tmp_path,
    )
    assert graph.param_count == 0 and not model.state_dict()  # a buffer that is not saved
    x = torch.zeros(1, 7, 6)
    with torch.no_grad():
        pe = model(x)[0]
    for position in (0, 3, 6):
        for i in range(3):
            angle = position / 10000 ** (2 * i / 6)
            assert math.isclose(pe[position, 2 * i].item(), math.sin(angle), abs_tol=1e-6)
            assert math.isclose(pe[position, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-6)
    assert model(torch.zeros(1, 3, 6)).shape == (1, 3, 6)
    assert "import math" in _source(tmp_path)


@pytest.mark.parametrize("op", ["multihead_attention", "transformer_encoder"])
def test_causal_attention(op: str, tmp_path: Path) -> None:
    layer = (
        "{op: multihead_attention, name: attn, num_heads: 2, causal: true}"
        if op == "multihead_attention"
        else "{op: transformer_encoder, name: attn, nhead: 2, num_layers: 2, dim_feedforward: 16, causal: true}"
    )
    model, _, _ = _build(f"name: Causal\ninput: {{shape: [6, 8]}}\nlayers:\n  - {layer}\n", tmp_path)
    x = torch.randn(2, 6, 8)
    changed = x.clone()
    changed[:, 4:] = torch.randn(2, 2, 8)
    with torch.no_grad():
        out, other = model(x), model(changed)
    assert torch.allclose(out[:, :4], other[:, :4], atol=1e-5)
    assert not torch.allclose(out[:, 4:], other[:, 4:])


DECODER = """
name: Decoder
inputs:
  tgt: {shape: [7, 16]}
  memory: {shape: [9, 16]}
blocks:
  DecoderLayer:
    # nn.TransformerDecoderLayer (post-norm) from primitives; `memory` is a second input.
    inputs: [memory]
    dims: [length, d_model]
    params: {nhead: int, dim_feedforward: int}
    layers:
      - {op: multihead_attention, name: self_attn, num_heads: nhead, dropout: 0.1, causal: true}
      - {op: dropout, name: dropout1, p: 0.1}
      - {op: add, name: residual1, in: [x, dropout1]}
      - {op: layer_norm, name: norm1}
      - {op: multihead_attention, name: multihead_attn, in: [norm1, memory], num_heads: nhead, dropout: 0.1}
      - {op: dropout, name: dropout2, p: 0.1}
      - {op: add, name: residual2, in: [norm1, dropout2]}
      - {op: layer_norm, name: norm2}
      - {op: linear, name: linear1, out_features: dim_feedforward}
      - {op: relu, name: activation}
      - {op: dropout, name: dropout, p: 0.1}
      - {op: linear, name: linear2, out_features: d_model}
      - {op: dropout, name: dropout3, p: 0.1}
      - {op: add, name: residual3, in: [norm2, dropout3]}
      - {op: layer_norm, name: norm3}
layers:
  - {block: DecoderLayer, name: layers, in: [tgt, memory], repeat: 2, NAMES args: {nhead: 2, dim_feedforward: 32}}
"""


def test_decoder_layer_from_primitives_is_torchs(tmp_path: Path) -> None:
    """A block with two inputs, repeated: a loop over an nn.ModuleList that passes `memory` to each layer."""
    model, _, graph = _build(DECODER.replace("NAMES ", ""), tmp_path)
    torch.manual_seed(0)
    layer = torch.nn.TransformerDecoderLayer(16, 2, 32, batch_first=True)
    reference = torch.nn.TransformerDecoder(layer, 2).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    assert graph.param_count == sum(p.numel() for p in reference.parameters())
    tgt, memory = torch.randn(2, 7, 16), torch.randn(2, 9, 16)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(7)
    with torch.no_grad():
        expected = reference(tgt, memory, tgt_mask=causal, tgt_is_causal=True)
        assert (model(tgt, memory) - expected).abs().max().item() < 1e-5
    source = _source(tmp_path)
    assert "for layer in self.layers:\n            x = layer(x, memory)" in source
    assert "def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:" in source


def test_named_repeat_of_a_block_with_two_inputs(tmp_path: Path) -> None:
    model, _, graph = _build(DECODER.replace("NAMES ", 'names: "block_{i}", '), tmp_path)
    assert list(dict(model.named_children())["layers"].keys()) == ["block_0", "block_1"]
    assert [n for n, _ in model.named_parameters()] == list(parameters(graph))
    assert model(torch.randn(2, 7, 16), torch.randn(2, 9, 16)).shape == (2, 7, 16)
    assert "for layer in self.layers.values():" in _source(tmp_path)
