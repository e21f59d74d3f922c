"""In-place ops against torch: every small graph that specc accepts with `inplace: true` computes the same
outputs and gradients as the same graph without it; every graph it refuses really goes wrong in torch
(an autograd error, or other values), except the few refusals that are deliberately conservative.

Each case is a producer (the op that makes the value), an in-place op on that value, and a pattern of other
uses of the value. Refused graphs are built anyway, with the check switched off, to see what torch does.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import specc.shapes
from specc.compiler import analyze, generate
from specc.errors import SpecErrors
from specc.write import write_files
from tests.generated import import_generated
from tests.tally import TALLY

# The op that makes the value the in-place op overwrites (after `lin`, a linear layer of the input).
PRODUCERS: dict[str, list[dict[str, Any]]] = {
    "linear": [],
    "relu": [{"op": "relu"}],
    "relu_inplace": [{"op": "relu", "inplace": True}],
    "sigmoid": [{"op": "sigmoid"}],
    "tanh": [{"op": "tanh"}],
    "softmax": [{"op": "softmax"}],
    "log_softmax": [{"op": "log_softmax"}],
    "gelu": [{"op": "gelu"}],
    "silu_inplace": [{"op": "silu", "inplace": True}],
    "elu": [{"op": "elu"}],
    "elu_inplace": [{"op": "elu", "inplace": True}],
    "leaky_relu_inplace": [{"op": "leaky_relu", "inplace": True}],
    "layer_norm": [{"op": "layer_norm"}],
    "transpose_of_relu": [{"op": "relu"}, {"op": "transpose", "dim0": 1, "dim1": 2}],
    "transpose": [{"op": "transpose", "dim0": 1, "dim1": 2}],
    "chunk": [{"op": "chunk", "chunks": 2, "dim": -1, "index": 0}],
    "sdpa": [{"op": "scaled_dot_product_attention", "in": ["lin", "lin", "lin"]}],
    "identity": [{"op": "identity"}],
}
IN_PLACE = {
    "relu": {"op": "relu"},
    "leaky_relu": {"op": "leaky_relu"},
    "elu": {"op": "elu"},
    "silu": {"op": "silu"},
}
# Other uses of the produced value `v` besides the in-place op `ip` on it.
PATTERNS = ["alone", "read_after", "read_before_saved", "read_before_unsaved", "returned", "viewed_then_read"]
# Keepers: producers whose output autograd keeps (or torch guards), so any in-place op on it is refused.
KEPT = {"relu", "relu_inplace", "sigmoid", "tanh", "softmax", "log_softmax", "elu_inplace", "leaky_relu_inplace"}
KEPT |= {"transpose_of_relu", "chunk", "sdpa"}


def _conservative(producer: str, pattern: str) -> bool:
    """Refusals that torch would survive: specc does not track the order of reads that save nothing, and
    takes `flatten` for a view even of a transposed input (which it copies)."""
    if producer in KEPT:
        return False
    return pattern == "read_before_unsaved" or (producer == "transpose" and pattern == "viewed_then_read")


def _spec(producer: str, in_place: str, pattern: str, inplace: bool) -> dict[str, Any]:
    layers: list[dict[str, Any]] = [{"op": "linear", "name": "lin", "out_features": 6}]
    previous = "lin"
    for index, layer in enumerate(PRODUCERS[producer]):
        layers.append({"in": previous, **layer, "name": f"p{index}"})
        previous = f"p{index}"
    value = previous
    before: list[dict[str, Any]] = []
    if pattern == "read_before_saved":
        before = [{"op": "mul", "name": "early", "in": [value, value]}]
    elif pattern == "read_before_unsaved":
        before = [{"op": "add", "name": "early", "in": [value, value]}]
    elif pattern == "viewed_then_read":
        before = [{"op": "flatten", "name": "early", "in": value, "start_dim": 1}]
    layers += before
    layers.append({**IN_PLACE[in_place], "name": "ip", "in": value, "inplace": inplace})
    spec: dict[str, Any] = {"name": "Net", "input": {"shape": [3, 4]}, "layers": layers}
    if pattern == "read_after":
        layers.append({"op": "add", "name": "out", "in": [value, "ip"]})
    elif pattern in ("read_before_saved", "read_before_unsaved"):
        layers.append({"op": "add", "name": "out", "in": ["early", "ip"]})
    elif pattern == "viewed_then_read":
        layers.append({"op": "flatten", "name": "ip_flat", "in": "ip", "start_dim": 1})
        layers.append({"op": "add", "name": "out", "in": ["early", "ip_flat"]})
    elif pattern == "returned":
        spec["output"] = value
        layers.append({"op": "sigmoid", "name": "unused", "in": "ip"})  # keeps `ip` part of the graph
    return spec


def _build(spec: dict[str, Any], directory: Path, check: bool = True) -> Any:
    directory.mkdir(parents=True)
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    if check:
        compiled = analyze(path)
    else:
        original = specc.shapes.check_in_place
        specc.shapes.check_in_place = lambda graph, doc: None  # type: ignore[assignment]
        try:
            compiled = analyze(path)
        finally:
            specc.shapes.check_in_place = original
    write_files(directory / "out", generate(compiled, "out"))
    return import_generated(directory / "out").build_model()


def _run(model: Any, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]] | str:
    """Output and parameter gradients in training mode, or torch's error."""
    model.train()
    model.zero_grad()
    try:
        out = model(x.clone())
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    except RuntimeError as exc:
        return str(exc).splitlines()[0]
    return out.detach(), [p.grad.clone() for p in model.parameters()]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return False
    return torch.allclose(a[0], b[0], atol=1e-6) and all(
        torch.allclose(x, y, atol=1e-6) for x, y in zip(a[1], b[1], strict=True)
    )


CASES = list(itertools.product(sorted(PRODUCERS), sorted(IN_PLACE), PATTERNS))


@pytest.mark.parametrize(("producer", "in_place", "pattern"), CASES)
def test_in_place_is_accepted_exactly_where_torch_agrees(
    producer: str, in_place: str, pattern: str, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4)
    reference = _build(_spec(producer, in_place, pattern, inplace=False), tmp_path / "reference")
    expected = _run(reference, x)
    assert not isinstance(expected, str), expected
    spec = _spec(producer, in_place, pattern, inplace=True)
    try:
        model = _build(spec, tmp_path / "in_place")
    except SpecErrors as exc:
        (error,) = exc.errors
        assert error.code == "E202" and "cannot work in place" in error.message, error.format()
        forced = _build(spec, tmp_path / "forced", check=False)
        forced.load_state_dict(reference.state_dict())
        outcome = _run(forced, x)
        if _conservative(producer, pattern):
            assert _same(outcome, expected), "a refusal listed as conservative is needed: update _conservative"
        else:
            assert not _same(outcome, expected), f"refused, but torch computes the same: {error.format()}"
        TALLY["in-place: graphs refused where torch fails or computes other values"] += not _same(outcome, expected)
        return
    assert producer not in KEPT, f"accepted an in-place op on the output of {producer}"
    model.load_state_dict(reference.state_dict())
    outcome = _run(model, x)
    assert _same(outcome, expected), f"accepted, but in place torch gives {outcome}"
    TALLY["in-place: graphs accepted, same outputs and gradients as without"] += 1


def test_an_in_place_op_on_a_block_input_is_refused(tmp_path: Path) -> None:
    """A block cannot see its caller: overwriting its input would break a residual connection around it."""
    spec = {
        "name": "Net",
        "input": {"shape": [4]},
        "blocks": {"B": {"layers": [{"op": "relu", "inplace": True}, {"op": "linear", "out_features": 4}]}},
        "layers": [
            {"op": "linear", "name": "lin", "out_features": 4},
            {"block": "B", "name": "body"},
            {"op": "add", "name": "out", "in": ["lin", "body"]},
        ],
    }
    with pytest.raises(SpecErrors) as caught:
        _build(spec, tmp_path / "a")
    assert "it would overwrite the block's input `x`, a tensor its caller may still use" in caught.value.format()


def test_an_in_place_op_on_a_block_result_that_is_its_input_sees_the_callers_readers(tmp_path: Path) -> None:
    spec = {
        "name": "Net",
        "input": {"shape": [2, 4]},
        "blocks": {"Flat": {"layers": [{"op": "flatten", "start_dim": 1}]}},
        "layers": [
            {"op": "linear", "name": "lin", "out_features": 4},
            {"block": "Flat", "name": "flat"},
            {"op": "relu", "name": "act", "inplace": True},
            {"op": "flatten", "name": "lin_flat", "in": "lin", "start_dim": 1},
            {"op": "add", "name": "out", "in": ["lin_flat", "act"]},
        ],
    }
    with pytest.raises(SpecErrors) as caught:
        _build(spec, tmp_path / "a")
    assert "relu `act` cannot work in place: it would overwrite `lin` (the memory of `flat`)" in caught.value.format()


def test_the_zoo_keeps_its_in_place_relus() -> None:
    """torchvision's models use ReLU(inplace=True) after batch norm or linear layers: all accepted."""
    for name in ("alexnet", "vgg16_bn", "resnet50", "googlenet"):
        analyze(Path(__file__).resolve().parent.parent / "specs" / f"{name}.yaml")
