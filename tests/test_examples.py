"""Every example spec: the generated model imports, runs, and matches what specc inferred."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from specc.compiler import analyze
from specc.ops import Op, get_op
from specc.summary import parameters, rows
from tests.generated import SPECS, build, fresh_model, import_generated

EXPECTED_PARAMS = {
    "lenet": 61_706,
    "mlp": 397_510,
    "simple_cnn": 216_650,  # 32*9+32 + 21632*10+10
    "mnist_cnn": 225_226,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("examples")
    return {spec.stem: build(spec, root / spec.stem) for spec in SPECS}


_MODELS: dict[Path, Any] = {}


def generated_model(directory: Path) -> Any:
    """The generated module's freshly built model, built once per test session (the zoo is large)."""
    if directory not in _MODELS:
        _MODELS[directory] = fresh_model(import_generated(directory))
    return _MODELS[directory]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_forward_shapes_match_inference(spec: Path, built: dict[str, Path]) -> None:
    """Per-module output shapes seen by torch equal the shapes specc inferred, layer by layer."""
    graph = analyze(spec).graph
    module = import_generated(built[spec.stem])
    model = generated_model(built[spec.stem]).eval()
    seen: dict[str, tuple[int, ...] | None] = {}  # None: the module returned no tensor (attention's tuple)
    handles = [
        sub.register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(
                name, tuple(out.shape) if isinstance(out, torch.Tensor) else None
            )
        )
        for name, sub in model.named_modules()
        if name
    ]
    batch = 2
    with torch.no_grad():
        out = model(*module.example_inputs(batch))
    for handle in handles:
        handle.remove()
    assert tuple(out.shape) == (batch, *graph.node(graph.output).out.shape)
    for row in rows(graph):
        if row.name in seen and _called_plainly(row.op):
            assert seen[row.name] == (batch, *row.output_shape), row.name
    module_rows = [r for r in rows(graph) if _is_module(r.op)]
    assert {r.name for r in module_rows} <= set(seen), "every module layer ran"


def _is_module(op_name: str) -> bool:
    """Layers that are modules (blocks and sequentials too); function ops and parameters are not."""
    op = get_op(op_name)
    return op is None or op.kind == "module"


def _called_plainly(op_name: str) -> bool:
    """Modules whose output is the layer's value: not those forward calls in their own way (attention's
    `(output, weights)[0]`, a position embedding called on positions and added to its input)."""
    op = get_op(op_name)
    return op is None or (op.kind == "module" and type(op).module_call is Op.module_call)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_parameter_names_and_sizes(spec: Path, built: dict[str, Path]) -> None:
    """specc knows every parameter by its qualified name, in named_parameters() order."""
    model = generated_model(built[spec.stem])
    actual = [(name, p.numel()) for name, p in model.named_parameters()]
    assert list(parameters(analyze(spec).graph).items()) == actual


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_parameter_counts(spec: Path, built: dict[str, Path]) -> None:
    graph = analyze(spec).graph
    model = generated_model(built[spec.stem])
    actual = sum(p.numel() for p in model.parameters())
    assert graph.param_count == actual
    if spec.stem in EXPECTED_PARAMS:
        assert actual == EXPECTED_PARAMS[spec.stem]


def test_lenet_trains_one_step(built: dict[str, Path]) -> None:
    """Generated code is a real module: gradients flow and an optimizer step changes the loss."""
    torch.manual_seed(0)
    module = import_generated(built["lenet"])
    model = module.build_model()
    (x,) = module.example_inputs(16)
    y = torch.randint(0, 10, (16,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
