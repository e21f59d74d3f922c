"""The intermediate representation: graphs of named nodes, before and after shape inference.

A `Program` holds the model's graph and one template graph per block. Shape inference turns each
use of a block into instances: copies of the template with concrete (and symbolic) sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from specc.expr import Expr
from specc.load import JsonPath
from specc.ops import OpParams, TensorType, get_op

NodeKind = Literal["op", "sequential", "block"]
BLOCK_INPUT = "x"  # the name of a block's input (and of a model's single input)


@dataclass
class Node:
    """One layer. `args` are the values the user wrote (numbers, strings, or `Expr`s)."""

    name: str
    kind: NodeKind
    op: str  # op name, "sequential", or the block's name
    args: dict[str, Any]
    inputs: tuple[str, ...]
    path: JsonPath
    children: list[Node] = field(default_factory=list)  # sequential
    label: str = ""  # how diagnostics name the node when `name` alone is ambiguous (`features.3`)
    when: Expr | bool | None = None
    repeat: int | Expr | None = None  # block
    names: str | None = None  # block repeat: the instances' names, e.g. "encoder_layer_{i}" (default: 0, 1, ...)
    tie: str | None = None  # an earlier node of the same graph whose `weight` this node's weight is
    # Filled in by shape inference (specc.shapes):
    present: bool = True  # False when `when` is false: the node's value is its input's
    params: OpParams | None = None
    inputs_types: tuple[TensorType, ...] = ()
    out: TensorType | None = None
    param_count: int = 0
    tensors: dict[str, int] = field(default_factory=dict)  # parameter name -> size, as named_parameters()
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # some tensors' full shapes
    macs: int = 0
    instances: list[Graph] = field(default_factory=list)  # block: one inferred body per instance

    @property
    def repeated(self) -> bool:
        return self.kind == "block" and self.repeat is not None

    @property
    def is_parameter(self) -> bool:
        """An `nn.Parameter` attribute (op kind "parameter"): no inputs, `self.<name>` in forward."""
        op = get_op(self.op) if self.kind == "op" else None
        return op is not None and op.kind == "parameter"

    def instance_name(self, index: int) -> str:
        """The name of a repeated block's `index`-th instance inside its nn.Sequential."""
        return self.names.replace("{i}", str(index)) if self.names else str(index)


@dataclass
class BlockParam:
    type: str
    default: Any = None
    required: bool = True


@dataclass
class Graph:
    """A module class body: named inputs, nodes in execution order, and the node whose value is returned."""

    name: str
    inputs: dict[str, TensorType]
    nodes: list[Node]
    output: str
    constants: dict[str, Any] = field(default_factory=dict)
    # Blocks only: declared parameters, and after inference this instance's argument values.
    block_params: dict[str, BlockParam] | None = None
    block_vars: dict[str, Any] = field(default_factory=dict)  # name -> Expr or number, as written
    var_values: dict[str, Any] = field(default_factory=dict)  # after inference: name -> value (Dim)
    env: dict[str, Any] = field(default_factory=dict)
    call_input: TensorType | None = None  # the instance's input type as its caller sees it
    input_dims: tuple[str, ...] | None = None  # blocks: names of the input's sizes (`dims:`), if given
    call_output: TensorType | None = None  # and its output type
    # After inference (specc.inplace): whether the output may be the input's memory, and why no in-place op
    # may overwrite the output, if so (a caller's in-place op on a block's result must know both).
    output_shares_input: bool = False
    output_keeper: str | None = None

    @property
    def is_block(self) -> bool:
        return self.block_params is not None

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    @property
    def output_type(self) -> TensorType:
        """The type of the value `forward` returns (after inference)."""
        if self.output in self.inputs:
            return self.inputs[self.output]
        out = self.node(self.output).out
        assert out is not None, "output_type is known after shape inference"
        return out

    @property
    def param_count(self) -> int:
        return sum(n.param_count for n in self.nodes)

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)


@dataclass
class Program:
    model: Graph
    blocks: dict[str, Graph]  # templates, in dependency order (a block after the blocks it uses)


def walk(nodes: list[Node]) -> list[Node]:
    """`nodes` and their sequentials' children at any depth, in execution order (not block instances)."""
    out, stack = [], list(reversed(nodes))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def walk_all(graph: Graph) -> list[Node]:
    """Every node of `graph`, of its sequentials and of its block instances, at any depth."""
    out = []
    for node in walk(graph.nodes):
        out.append(node)
        for instance in node.instances:
            out += walk_all(instance)
    return out


def lint(graph: Graph) -> None:
    """Internal consistency before code is emitted: unique names, known ops, inputs defined before use.

    These are compiler invariants (the resolver reports user mistakes first), so a failure here is a bug.
    """
    seen = set(graph.inputs)
    for node in graph.nodes:
        if node.name in seen:
            raise AssertionError(f"IR lint: duplicate name {node.name!r}")
        if node.kind == "op" and get_op(node.op) is None:
            raise AssertionError(f"IR lint: unknown op {node.op!r}")
        for ref in node.inputs:
            if ref not in seen:
                raise AssertionError(f"IR lint: {node.name!r} uses {ref!r} before it is defined")
        seen.add(node.name)
        for instance in node.instances:
            lint(instance)
    if graph.output not in seen:
        raise AssertionError(f"IR lint: output {graph.output!r} is not defined")
