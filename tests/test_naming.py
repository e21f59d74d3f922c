"""The naming authority (specc/naming.py) and the name checks of stage 3 (specc/resolve.py): the reserved
lists match the installed torch and the generated model.py, every refusal is a located diagnostic, and
generated names are handed out in linear time."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from specc.compiler import analyze
from specc.errors import SpecErrors
from specc.naming import (
    GENERATED_CLASSES,
    MODEL_GLOBALS,
    MODULE_ATTRIBUTES,
    MODULE_DICT_ATTRIBUTES,
    SEQUENTIAL_ATTRIBUTES,
    Namespace,
    class_name_problem,
    layer_name_problem,
    name_problem,
    names_pattern_problem,
)

GOLDEN = Path(__file__).parent / "golden"


# --- the reserved lists ---------------------------------------------------------------------------


def _attributes(cls: type) -> set[str]:
    """Every attribute of an nn.Module class and of a fresh instance, but dunders (no name may be one)."""
    return {name for name in [*dir(cls), *vars(cls())] if not name.startswith("__")}


def test_module_attributes_match_the_installed_torch() -> None:
    nn = pytest.importorskip("torch.nn")
    missing = _attributes(nn.Module) - MODULE_ATTRIBUTES
    assert not missing, f"add to naming.MODULE_ATTRIBUTES: {sorted(missing)}"


@pytest.mark.parametrize(
    ("container", "listed"), [("Sequential", SEQUENTIAL_ATTRIBUTES), ("ModuleDict", MODULE_DICT_ATTRIBUTES)]
)
def test_container_attributes_match_the_installed_torch(container: str, listed: frozenset[str]) -> None:
    nn = pytest.importorskip("torch.nn")
    missing = _attributes(getattr(nn, container)) - _attributes(nn.Module) - listed
    assert not missing, f"add to naming's {container} attributes: {sorted(missing)}"


def _top_level_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(classes, every other name) that a module defines at its top level."""
    classes: set[str] = set()
    names: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef):
            classes.add(statement.name)
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
                continue
            names.update((alias.asname or alias.name).split(".")[0] for alias in statement.names)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names.update(node.id for target in targets for node in ast.walk(target) if isinstance(node, ast.Name))
    return classes, names


@pytest.mark.parametrize("model", sorted(GOLDEN.glob("*/model.py")), ids=lambda p: p.parent.name)
def test_model_globals_cover_the_generated_model(model: Path) -> None:
    """A class may not take a top-level name of model.py: naming.MODEL_GLOBALS lists them all."""
    classes, names = _top_level_names(ast.parse(model.read_text(encoding="utf-8")))
    assert names <= MODEL_GLOBALS, f"add to naming.MODEL_GLOBALS: {sorted(names - MODEL_GLOBALS)}"
    helpers = classes & GENERATED_CLASSES
    for name in classes - helpers:  # the spec's own classes were all valid class names
        assert class_name_problem(name) is None, name


@pytest.mark.parametrize("name", ["INPUT_SHAPES", "INPUT_DTYPES", "PRETRAINED_FILE", "NOT_LOADED", "FROZEN"])
def test_model_constants_are_not_class_names(name: str) -> None:
    assert class_name_problem(name) == f"`{name}` is a top-level name of the generated model.py"


@pytest.mark.parametrize("name", sorted(GENERATED_CLASSES))
def test_helper_classes_are_no_names(name: str) -> None:
    assert name_problem(name) == f"`{name}` is a class the generated code uses"
    assert class_name_problem(name) == f"`{name}` is a class the generated code uses"


def test_layer_names() -> None:
    assert layer_name_problem("fc1") is None
    assert layer_name_problem("append") is None  # an attribute of the model's own class is no problem
    assert layer_name_problem("append", sequential=True) == "`append` is an attribute of torch.nn.Sequential"
    assert layer_name_problem("_modules") == "`_modules` is an attribute of torch.nn.Module"
    assert layer_name_problem("_skip", sequential=True) == (
        "layer names must not start with `_` (torch.nn.Module keeps its own state in such attributes)"
    )
    assert name_problem("_skip") is None  # an input or a parameter may start with `_`


def test_names_patterns() -> None:
    assert names_pattern_problem("layer{i}") is None
    assert names_pattern_problem("bfloat{i}_x") is None
    assert names_pattern_problem("bfloat1{i}") == (
        "an instance would be called `bfloat16`: `bfloat16` is an attribute of torch.nn.Module"
    )
    assert names_pattern_problem("bfloat{i}") is not None  # bfloat16 for i = 16
    assert names_pattern_problem("bfloat0{i}") is None  # indices have no leading zeros
    assert names_pattern_problem("_{i}") is not None
    assert names_pattern_problem("cuda{i}") is None


# --- Namespace ------------------------------------------------------------------------------------


def test_namespace_numbers_each_stem_from_one_and_skips_taken_names() -> None:
    names = Namespace({"x"})
    names.claim("fc2")
    assert [names.create("fc") for _ in range(3)] == ["fc1", "fc3", "fc4"]
    assert names.create("conv") == "conv1"
    names.claim("fc5")
    assert names.create("fc") == "fc6"
    # Stems can meet: `fc1` + 1 is `fc11`, which `fc` reaches at 11.
    assert names.create("fc1") == "fc11"
    assert [names.create("fc") for _ in range(5)][-1] == "fc12"
    assert "fc11" in names and "fc13" not in names


def test_namespace_skips_names_with_a_problem() -> None:
    names = Namespace()
    assert names.create("bfloat") == "bfloat1"
    assert [names.create("bfloat") for _ in range(16)][-1] == "bfloat18"  # bfloat16 is nn.Module's


def test_namespace_is_linear() -> None:
    names = Namespace()
    start = time.perf_counter()
    created = [names.create("relu") for _ in range(20_000)]
    assert created[-1] == "relu20000"
    assert time.perf_counter() - start < 1.0


# --- diagnostics ----------------------------------------------------------------------------------


def first_error(tmp_path: Path, text: str) -> str:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    with pytest.raises(SpecErrors) as info:
        analyze(spec)
    return info.value.errors[0].format().replace(str(spec), "spec.yaml")


HEAD = "name: Net\ninput: {shape: [4]}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD + "layers:\n  - {op: linear, out_features: 2, name: _modules}\n",
            "spec.yaml:4:41: error[E106]: invalid name '_modules': `_modules` is an attribute of torch.nn.Module",
        ),
        (
            HEAD + "layers:\n  - {op: relu, name: _skip}\n",
            "spec.yaml:4:22: error[E106]: invalid name '_skip': layer names must not start with `_`"
            " (torch.nn.Module keeps its own state in such attributes)",
        ),
        (
            HEAD + "blocks:\n  B:\n    layers:\n      - {op: relu, name: _skip}\nlayers: [{block: B}]\n",
            "spec.yaml:6:26: error[E106]: invalid name '_skip': layer names must not start with `_`"
            " (torch.nn.Module keeps its own state in such attributes)",
        ),
        (
            HEAD + "layers:\n  - op: sequential\n    layers:\n      - {op: relu, name: pop}\n",
            "spec.yaml:6:26: error[E106]: invalid name 'pop': `pop` is an attribute of torch.nn.Sequential",
        ),
        (
            HEAD + "layers:\n  - op: sequential\n    layers:\n      - {op: relu, name: _skip}\n",
            "spec.yaml:6:26: error[E106]: invalid name '_skip': layer names must not start with `_`"
            " (torch.nn.Module keeps its own state in such attributes)",
        ),
        (
            HEAD + "blocks:\n  B:\n    layers: [relu]\nlayers:\n  - {block: B, repeat: 8, names: 'bfloat1{i}'}\n",
            "spec.yaml:7:34: error[E106]: invalid `names` 'bfloat1{i}': an instance would be called `bfloat16`:"
            " `bfloat16` is an attribute of torch.nn.Module",
        ),
        (
            "name: FROZEN\ninput: {shape: [4]}\nlayers: [relu]\n",
            "spec.yaml:1:7: error[E106]: invalid name 'FROZEN': `FROZEN` is a top-level name of the generated model.py",
        ),
        (
            HEAD + "blocks:\n  Inner:\n    layers: [relu]\n  Outer:\n    params: {Inner: int}\n"
            "    layers: [{block: Inner}]\nlayers: [{block: Outer, args: {Inner: 3}}]\n",
            "spec.yaml:7:14: error[E106]: invalid name 'Inner': `Inner` is a class of the generated model.py,"
            " which a block parameter would hide in `__init__`",
        ),
        (
            HEAD + "blocks:\n  B:\n    vars: {Net: 3}\n    layers: [relu]\nlayers: [{block: B}]\n",
            "spec.yaml:5:12: error[E106]: invalid name 'Net': `Net` is a class of the generated model.py,"
            " which a block var would hide in `__init__`",
        ),
        (
            HEAD + "blocks:\n  B:\n    dims: [B]\n    layers: [relu]\nlayers: [{block: B}]\n",
            "spec.yaml:5:12: error[E106]: invalid name 'B': `B` is a class of the generated model.py,"
            " which a block dim would hide in `__init__`",
        ),
        (
            HEAD + "blocks:\n  B:\n    params: {OrderedDict: int}\n    layers: [relu]\nlayers: [{block: B}]\n",
            "spec.yaml:5:14: error[E106]: invalid name 'OrderedDict': `OrderedDict` is a class the generated code uses",
        ),
        (
            "name: Same\ninput: {shape: [4]}\nblocks:\n  Same:\n    layers: [relu]\nlayers: [{block: Same}]\n",
            "spec.yaml:4:3: error[E107]: duplicate class name `Same`: the model (`name`) and a block have it"
            " (first used at spec.yaml:1:7)\n"
            "  hint: the model and its blocks become classes of one model.py; rename one of them",
        ),
        (
            "blocks:\n  Same:\n    layers: [relu]\nname: Same\ninput: {shape: [4]}\nlayers: [{block: Same}]\n",
            "spec.yaml:4:7: error[E107]: duplicate class name `Same`: the model (`name`) and a block have it"
            " (first used at spec.yaml:2:3)\n"
            "  hint: the model and its blocks become classes of one model.py; rename one of them",
        ),
    ],
)
def test_refusals_are_located(tmp_path: Path, text: str, expected: str) -> None:
    assert first_error(tmp_path, text) == expected


def test_a_class_name_taken_from_an_extended_spec_points_at_the_name(tmp_path: Path) -> None:
    error = first_error(tmp_path, "extends: resnet18\nname: BasicBlock\n")
    assert error.startswith("spec.yaml:2:7: error[E107]: duplicate class name `BasicBlock`"), error
    assert "(first used at <specc>/specs/resnet18.yaml:" in error


def test_references_still_resolve(tmp_path: Path) -> None:
    """`in`, `tie` and `output` look names up in the inputs and earlier layers."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: Net\ninputs: {a: {shape: [4]}, b: {shape: [4]}}\nlayers:\n"
        "  - {op: linear, out_features: 4, name: fa, in: a}\n"
        "  - {op: linear, out_features: 4, name: fb, in: b, tie: fa}\n"
        "  - {op: add, in: [fa, fb], name: total}\n"
        "output: total\n",
        encoding="utf-8",
    )
    graph = analyze(spec).graph
    assert [(n.name, n.inputs, n.tie) for n in graph.nodes] == [
        ("fa", ("a",), None),
        ("fb", ("b",), "fa"),
        ("total", ("fa", "fb"), None),
    ]
    assert graph.output == "total"


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (
            "  - {op: linear, out_features: 4, name: fa, in: a, tie: a}\n",
            "`tie` refers to `a`, which is not an earlier layer",
        ),
        ("  - {op: relu, in: c}\n", "`in` refers to `c`, which is not an input or an earlier layer"),
    ],
)
def test_unknown_references_are_refused(tmp_path: Path, layers: str, expected: str) -> None:
    error = first_error(tmp_path, "name: Net\ninputs: {a: {shape: [4]}, b: {shape: [4]}}\nlayers:\n" + layers)
    assert f"error[E108]: {expected}" in error, error
