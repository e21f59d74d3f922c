"""Limits of shape inference: how deep blocks may nest, how many layers block uses may expand to, how many
values one tensor may hold; and in-place ops on what they may not overwrite (an expanded view, a parameter),
followed through the layers between. Each limit is checked on both sides, with the diagnostic's place."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from specc import shapes
from specc.compiler import Compiled, analyze
from specc.errors import SpecError, SpecErrors
from specc.ops.base import MAX_NUMEL


def _analyze(tmp_path: Path, text: str) -> Compiled:
    spec = tmp_path / "net.yaml"
    spec.write_text(text, encoding="utf-8")
    return analyze(spec)


def _refused(tmp_path: Path, text: str) -> SpecError:
    with pytest.raises(SpecErrors) as info:
        _analyze(tmp_path, text)
    return info.value.errors[0]


def _at(error: SpecError) -> str:
    assert error.loc is not None
    return f"{error.loc.line}:{error.loc.col}"


# ------------------------------------------------------------------------------------------ block nesting


def _chain(depth: int) -> str:
    """`depth` blocks, each using the one before; the model uses the last."""
    lines = ["name: Deep", "input: {shape: [4]}", "blocks:", "  B0: {layers: [relu]}"]
    lines += [f"  B{i}: {{layers: [{{block: B{i - 1}}}]}}" for i in range(1, depth)]
    lines.append(f"layers: [{{block: B{depth - 1}}}]")
    return "\n".join(lines) + "\n"


def test_blocks_may_nest_up_to_the_limit(tmp_path: Path) -> None:
    compiled = _analyze(tmp_path, _chain(shapes.MAX_BLOCK_DEPTH))
    assert compiled.graph.output_type.shape == (4,)


def test_blocks_nested_past_the_limit_are_refused_at_the_use_too_deep(tmp_path: Path) -> None:
    depth = shapes.MAX_BLOCK_DEPTH + 1
    error = _refused(tmp_path, _chain(depth))
    assert error.code == "E104" and f"limit of {shapes.MAX_BLOCK_DEPTH}" in error.message
    # The model uses B{depth-1} (depth 1); B1's use of B0 is the 33rd level: line 4 + 1, `block: B0`.
    assert _at(error) == "5:25" and "`B0`" in error.message


def test_a_chain_of_400_blocks_is_refused_quickly(tmp_path: Path) -> None:
    start = time.perf_counter()
    error = _refused(tmp_path, _chain(400))
    assert error.code == "E104" and time.perf_counter() - start < 1.0


# --------------------------------------------------------------------------------- layers after expansion

BOMB = """name: Bomb
input: {shape: [4]}
params: {n: 1000}
blocks:
  B0: {layers: [relu]}
  B1: {layers: [{block: B0, repeat: REPEAT}]}
  B2: {layers: [{block: B1, repeat: REPEAT}]}
  B3: {layers: [{block: B2, repeat: REPEAT}]}
layers: [{block: B3}]
"""


@pytest.mark.parametrize("repeat", ["1000", "n", "n // 1"])
def test_a_repeat_bomb_is_refused_before_expanding(tmp_path: Path, repeat: str) -> None:
    """A repeat known before expansion (a number, an expression of the spec's params) is counted first."""
    start = time.perf_counter()
    error = _refused(tmp_path, BOMB.replace("REPEAT", repeat))
    assert time.perf_counter() - start < 0.2  # nothing was expanded
    assert error.code == "E104" and f"limit of {shapes.MAX_LAYERS:,}" in error.message
    assert _at(error) == "7:37"  # B2's repeat of B1: 1000 x 1001 layers, the first to cross the limit
    assert any(":9:18: block `B3` is used here" in note for note in error.notes)


def test_a_repeat_bomb_through_block_parameters_is_refused(tmp_path: Path) -> None:
    """Repeats that only expansion knows (a block parameter) are counted as instances are made."""
    text = """name: Bomb
input: {shape: [4]}
blocks:
  B0: {layers: [relu]}
  B1: {params: {k: int}, layers: [{block: B0, repeat: k}]}
  B2: {params: {k: int}, layers: [{block: B1, repeat: k, args: {k: k}}]}
layers: [{block: B2, args: {k: 1000}}]
"""
    error = _refused(tmp_path, text)
    assert error.code == "E104" and f"limit of {shapes.MAX_LAYERS:,}" in error.message
    assert _at(error) == "6:55"  # B2's repeat, where the instances of B1 cannot fit


@pytest.mark.parametrize(("uses", "ok"), [(10, True), (11, False)])
def test_the_layer_budget_counts_every_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uses: int, ok: bool
) -> None:
    """Each use of B1 (repeat 9 of a one-layer block) expands to 1 + 9 layers: 10 uses make 100."""
    monkeypatch.setattr(shapes, "MAX_LAYERS", 100)
    text = "name: Net\ninput: {shape: [4]}\nblocks:\n  B0: {layers: [relu]}\n  B1: {layers: [{block: B0, repeat: 9}]}\n"
    text += "layers:\n" + "  - {block: B1}\n" * uses
    if ok:
        _analyze(tmp_path, text)
    else:
        error = _refused(tmp_path, text)
        assert error.code == "E104" and _at(error) == f"{7 + uses - 1}:13"


def test_uses_that_are_absent_or_repeated_by_expressions_count_as_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shapes, "MAX_LAYERS", 100)
    text = """name: Net
input: {shape: [4]}
params: {on: false}
blocks:
  B0: {layers: [relu]}
  B1: {params: {k: int}, layers: [{block: B0, repeat: k}]}
layers:
  - {block: B1, repeat: 50, args: {k: 1}, when: on}
  - {block: B1, repeat: 40, args: {k: 1}}
"""
    _analyze(tmp_path, text)  # the absent use makes nothing; the other 40 x 2 layers
    error = _refused(tmp_path, text.replace("on: false", "on: true"))
    assert error.code == "E104"


def test_the_bundled_models_are_far_from_the_limits() -> None:
    root = Path(__file__).resolve().parent.parent / "specs"
    for spec in sorted(root.glob("*.yaml")):
        analyze(spec)  # every one expands within MAX_LAYERS


# ------------------------------------------------------------------------------------------ tensor sizes


@pytest.mark.parametrize(
    ("layers", "at"),
    [
        ("{op: linear, out_features: 2147483647}", "4:5"),  # a 2^62-value weight
        ("{op: embedding, num_embeddings: 2097152, embedding_dim: 1048576}", "4:5"),  # 2^41
        ("{op: parameter, shape: [1048576, 2097152]}", "4:5"),
        ("{op: expand, sizes: [2147483647, -1]}", "4:5"),  # an activation of 2^51 values a sample
    ],
)
def test_tensors_over_2_40_values_are_refused(tmp_path: Path, layers: str, at: str) -> None:
    dtype = "int64" if "embedding" in layers else "float32"
    first = "[1, 1048576]" if "expand" in layers else "[1048576]"
    text = f"name: Net\ninput: {{shape: {first}, dtype: {dtype}}}\nlayers:\n  - {layers}\n"
    error = _refused(tmp_path, text)
    assert error.code == "E202" and f"{MAX_NUMEL:,}" in error.message and _at(error) == at


def test_a_tensor_of_2_40_values_is_accepted(tmp_path: Path) -> None:
    compiled = _analyze(
        tmp_path, "name: Net\ninput: {shape: [1048576]}\nlayers:\n  - {op: linear, out_features: 1048576}\n"
    )
    assert compiled.graph.param_count == 2**40 + 2**20


def test_an_input_over_2_40_values_is_refused(tmp_path: Path) -> None:
    error = _refused(tmp_path, "name: Net\ninputs:\n  a: {shape: [2097152, 1048576]}\nlayers: [relu]\n")
    assert error.code == "E202" and _at(error) == "3:14"


# -------------------------------------------------------------------------------------- in-place writes


@pytest.mark.parametrize(
    ("between", "refused"),
    [
        ("", True),  # the parameter itself
        ("  - {op: reshape, shape: [2, 2]}\n", True),  # a view of it
        ("  - {op: dropout}\n", True),  # dropout returns its input in eval mode
        ("  - {op: identity}\n", True),
        ("  - {op: gelu}\n", False),  # a new tensor
        ("  - {op: add, in: [p, p]}\n", False),
    ],
)
def test_inplace_on_a_parameter_is_refused_through_views(tmp_path: Path, between: str, refused: bool) -> None:
    text = f"name: Net\ninput: {{shape: [4]}}\nlayers:\n  - {{op: parameter, name: p, shape: [4]}}\n{between}"
    text += "  - {op: relu, inplace: true, name: r}\n  - {op: reshape, shape: [4], name: flat}\n"
    text += "  - {op: add, in: [x, flat]}\n"
    if refused:
        error = _refused(tmp_path, text)
        assert error.code == "E202" and "parameter" in error.message
    else:
        _analyze(tmp_path, text)


@pytest.mark.parametrize(
    ("between", "refused"),
    [
        ("", True),
        ("  - {op: transpose, dim0: 1, dim1: 2}\n", True),  # still a view of the expanded tensor
        ("  - {op: gelu}\n", False),
        ("  - {op: reshape, shape: [12]}\n  - {op: mul, in: [reshape1, reshape1]}\n", False),
    ],
)
def test_inplace_after_expand_is_refused_through_views(tmp_path: Path, between: str, refused: bool) -> None:
    text = f"name: Net\ninput: {{shape: [1, 4]}}\nlayers:\n  - {{op: expand, sizes: [3, -1]}}\n{between}"
    text += "  - {op: dropout, inplace: true}\n"
    if refused:
        error = _refused(tmp_path, text)
        assert error.code == "E202" and "expand" in error.message
        assert _at(error) == f"{5 + between.count(chr(10))}:28"  # at `inplace`
    else:
        _analyze(tmp_path, text)


def test_inplace_after_a_transpose_is_accepted(tmp_path: Path) -> None:
    text = "name: Net\ninput: {shape: [3, 4]}\nlayers:\n  - {op: linear, out_features: 4}\n"
    text += "  - {op: transpose, dim0: 1, dim1: 2}\n  - {op: relu, inplace: true}\n"
    _analyze(tmp_path, text)
