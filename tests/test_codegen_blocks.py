"""Block classes shared by instances that differ in a `when` layer, and models whose parameters follow a
non-float32 input: the generated code is imported, built and run (not searched for text)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from specc.verify import verify
from tests.generated import build_text, import_generated


def _built(text: str, tmp_path: Path) -> tuple[Any, Any, Path]:
    """The generated module, its freshly built model run on its own example inputs, and the output folder."""
    out = build_text(textwrap.dedent(text), tmp_path)
    module = import_generated(out)
    model = module.build_model()
    model(*module.example_inputs(2))
    return module, model, out


def _verified(tmp_path: Path) -> None:
    report = verify(tmp_path / "spec.yaml")
    assert report.ok, report.format()


def _ruff_clean(out: Path) -> None:
    """`ruff check --isolated` (ruff's default rules) finds nothing in model.py, where ruff is installed."""
    if shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists():
        return
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run(
        [ruff, "check", "--isolated", "--no-cache", str(out / "model.py")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("decl", "off", "on"),
    [
        ("{use: bool}", "{use: false}", "{use: true}"),
        ("{use: {type: float, default: 0.0}}", "{use: 0.1}", "{use: 0.9}"),
    ],
)
def test_a_when_over_a_bool_or_float_parameter_is_tested_in_the_shared_class(
    decl: str, off: str, on: str, tmp_path: Path
) -> None:
    condition = "use" if "bool" in decl else "use > 0.5"
    _, model, out = _built(
        f"""
        name: Net
        input: {{shape: [4]}}
        blocks:
          B0:
            params: {decl}
            layers:
              - {{op: linear, out_features: 3, when: "{condition}"}}
        layers:
          - {{block: B0, args: {off}}}
          - {{block: B0, args: {on}}}
          - {{block: B0, args: {off}}}
        """,
        tmp_path,
    )
    first, second, third = model.b01, model.b02, model.b03
    assert type(first) is type(second) is type(third)  # one class, whose __init__ decides
    assert first.fc1 is None and third.fc1 is None
    assert isinstance(second.fc1, torch.nn.Linear) and second.fc1.in_features == 4
    assert model(torch.randn(2, 4)).shape == (2, 3)
    _verified(tmp_path)
    _ruff_clean(out)


def test_every_instance_passes_the_input_sizes_its_class_uses(tmp_path: Path) -> None:
    """The first instance lacks the layer that needs `in_features`: it still passes it (one constructor)."""
    _, model, _ = _built(
        """
        name: Net
        input: {shape: [3, 4]}
        blocks:
          B0:
            params: {flag: {type: int, default: 0}}
            layers:
              - {op: transformer_encoder_layer, nhead: 1, dim_feedforward: 2, dropout: 0.0, when: flag > 0}
              - {op: linear, out_features: 4, when: flag > 1}
        layers:
          - {block: B0, args: {flag: "i"}, repeat: 3}
        """,
        tmp_path,
    )
    layers = list(model.b01)
    assert len({type(layer) for layer in layers}) == 1
    assert [layer.encoder_layer1 is None for layer in layers] == [True, False, False]
    assert [layer.fc1 is None for layer in layers] == [True, True, False]
    _verified(tmp_path)


def test_vars_and_constants_in_conditions(tmp_path: Path) -> None:
    """A bool var over a parameter is computed in `__init__`; constants and the input's rank are folded, so
    the code has no comparison of two constants (a ruff finding) and one class serves every instance."""
    _, model, out = _built(
        """
        name: Net
        input: {shape: [2, 6]}
        params: {on: true, limit: 0.5}
        blocks:
          B:
            params: {norm: bool, p: {type: float, default: 0.25}}
            vars: {plain: "not norm", wide: "p * 2"}
            layers:
              - {op: linear, out_features: 6, when: "plain and wide > limit"}
              - {op: layer_norm, when: "norm and on and in_rank == 2"}
              - {op: relu, when: "in_rank > 5"}
        layers:
          - {block: B, args: {norm: false}}
          - {block: B, args: {norm: false, p: 0.5}}
          - {block: B, args: {norm: true}}
        """,
        tmp_path,
    )
    blocks = [model.b1, model.b2, model.b3]
    assert len({type(b) for b in blocks}) == 1
    assert [b.fc1 is not None for b in blocks] == [False, True, False]
    assert [b.norm1 is not None for b in blocks] == [False, False, True]
    assert not hasattr(blocks[0], "relu1")  # a layer no instance has is not built at all
    _verified(tmp_path)
    _ruff_clean(out)


def test_instances_that_print_differently_get_classes_of_their_own(tmp_path: Path) -> None:
    """Three instances: the first two fit one class, the third's dropout differs from the second's although it
    is compatible with the first (which lacks the dropout): it must not join their class."""
    _, model, _ = _built(
        """
        name: Net
        input: {shape: [4]}
        blocks:
          B:
            params: {a: int, b: int, p: float}
            layers:
              - {op: dropout, p: p, when: a > 0}
              - {op: linear, out_features: 4, when: b > 0}
        layers:
          - {block: B, args: {a: 0, b: 1, p: 0.1}}
          - {block: B, args: {a: 1, b: 0, p: 0.1}}
          - {block: B, args: {a: 1, b: 1, p: 0.2}}
        """,
        tmp_path,
    )
    assert type(model.b1) is type(model.b2) is not type(model.b3)
    assert model.b2.dropout1.p == 0.1 and model.b3.dropout1.p == 0.2


def test_a_class_builds_each_instance_with_its_own_arguments(tmp_path: Path) -> None:
    """Instances of one class keep their own sizes: the class's code is symbolic in the constructor's names."""
    _, model, _ = _built(
        """
        name: Net
        input: {shape: [4]}
        blocks:
          B:
            params: {width: int, use: bool}
            layers:
              - {op: linear, out_features: width}
              - {op: relu, when: use}
        layers:
          - {block: B, args: {width: 8, use: true}}
          - {block: B, args: {width: 5, use: false}}
        """,
        tmp_path,
    )
    assert type(model.b1) is type(model.b2)
    assert (model.b1.fc1.in_features, model.b1.fc1.out_features) == (4, 8)
    assert (model.b2.fc1.in_features, model.b2.fc1.out_features) == (8, 5)
    assert model.b2.relu1 is None


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_parameters_take_the_floating_input_dtype(dtype: str, tmp_path: Path) -> None:
    module, model, _ = _built(
        f"""
        name: Net
        input: {{shape: [6, 8], dtype: {dtype}}}
        layers:
          - {{op: positional_encoding}}
          - {{op: layer_norm}}
          - {{op: linear, out_features: 3}}
        """,
        tmp_path,
    )
    want = getattr(torch, dtype)
    assert {p.dtype for p in model.parameters()} == {want}
    assert {b.dtype for b in model.buffers()} == {want}
    assert model(*module.example_inputs(2)).dtype == want
    _verified(tmp_path)


def test_int_and_float64_inputs(tmp_path: Path) -> None:
    """Token ids select float64 embedding rows (the parameters' dtype) to add to a float64 input."""
    module, model, _ = _built(
        """
        name: Net
        inputs:
          ids: {shape: [5], dtype: int64}
          feats: {shape: [5, 4], dtype: float64}
        layers:
          - {op: embedding, name: emb, in: ids, num_embeddings: 7, embedding_dim: 4}
          - {op: parameter, name: bias, shape: [5, 4]}
          - {op: add, in: [emb, feats, bias]}
          - {op: linear, out_features: 2}
        """,
        tmp_path,
    )
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert model(*module.example_inputs(2)).dtype == torch.float64
    _verified(tmp_path)


def test_float32_and_integer_models_are_not_converted(tmp_path: Path) -> None:
    module, model, _ = _built(
        """
        name: Net
        input: {shape: [5], dtype: int64}
        layers:
          - {op: embedding, num_embeddings: 7, embedding_dim: 4}
          - {op: linear, out_features: 2}
        """,
        tmp_path,
    )
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert model(*module.example_inputs(2)).dtype == torch.float32
    _verified(tmp_path)
