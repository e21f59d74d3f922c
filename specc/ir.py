"""The intermediate representation: graphs of named nodes, before and after shape inference."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from specc.errors import SpecError
from specc.load import JsonPath
from specc.ops import OpParams, TensorType, get_op

NodeKind = Literal["op", "sequential"]


@dataclass
class Node:
    """One layer. `args` are the values the user wrote (numbers, strings, or `Expr`s)."""

    name: str
    kind: NodeKind
    op: str
    args: dict[str, Any]
    inputs: tuple[str, ...]
    path: JsonPath
    children: list[Node] = field(default_factory=list)
    # Filled in by shape inference (specc.shapes):
    params: OpParams | None = None
    inputs_types: tuple[TensorType, ...] = ()
    out: TensorType | None = None
    param_count: int = 0
    macs: int = 0


@dataclass
class Graph:
    """A module class: named inputs, nodes in execution order, and the node whose value is returned."""

    name: str
    inputs: dict[str, TensorType]
    nodes: list[Node]
    output: str
    constants: dict[str, Any] = field(default_factory=dict)
    input_paths: dict[str, JsonPath] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    @property
    def param_count(self) -> int:
        return sum(n.param_count for n in self.nodes)

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)


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
    if graph.output not in seen:
        raise AssertionError(f"IR lint: output {graph.output!r} is not defined")


def consumers(graph: Graph) -> dict[str, int]:
    """How many nodes read each value (the output counts as one reader)."""
    counts = {name: 0 for name in [*graph.inputs, *(n.name for n in graph.nodes)]}
    for node in graph.nodes:
        for ref in node.inputs:
            counts[ref] += 1
    counts[graph.output] += 1
    return counts


def raise_at(code: str, message: str, loc: Any, hint: str | None = None) -> SpecError:
    return SpecError(code, message, loc, hint=hint)
