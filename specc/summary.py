"""A torchinfo-like summary of an inferred graph: layer, output shape, parameters, MACs."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from specc.ir import Graph, Node


@dataclass(frozen=True)
class Row:
    name: str  # qualified module name, as in model.named_modules() (features.0)
    op: str
    output_shape: list[int]  # per sample, without the batch dimension
    params: int
    macs: int
    depth: int


def rows(graph: Graph) -> list[Row]:
    out: list[Row] = []

    def visit(node: Node, prefix: str, depth: int) -> None:
        if not node.present:
            return
        assert node.out is not None
        name = f"{prefix}{node.name}"
        out.append(Row(name, node.op, [int(d) for d in node.out.shape], node.param_count, node.macs, depth))
        for child in node.children:
            visit(child, f"{name}.", depth + 1)
        for index, instance in enumerate(node.instances):
            if node.repeated:
                instance_name = f"{name}.{node.instance_name(index)}"
                shape = [int(d) for d in instance.output_type.shape]
                out.append(Row(instance_name, node.op, shape, instance.param_count, instance.macs, depth + 1))
                visit_graph(instance, f"{instance_name}.", depth + 2)
            else:
                visit_graph(instance, f"{name}.", depth + 1)

    def visit_graph(g: Graph, prefix: str, depth: int) -> None:
        for node in g.nodes:
            visit(node, prefix, depth)

    visit_graph(graph, "", 0)
    return out


def parameters(graph: Graph) -> dict[str, int]:
    """Every parameter's qualified name and size, in `model.named_parameters()` order: a module's own
    `nn.Parameter`s (parameter nodes) first, then its submodules' in order. A weight shared with `tie`
    is listed once, under the earlier layer's name."""
    out: dict[str, int] = {}

    def visit(node: Node, prefix: str) -> None:
        if not node.present:
            return
        name = f"{prefix}{node.name}"
        for tensor, size in node.tensors.items():
            out[f"{name}.{tensor}" if tensor else name] = size
        for child in node.children:
            visit(child, f"{name}.")
        for index, instance in enumerate(node.instances):
            visit_graph(instance, f"{name}.{node.instance_name(index)}." if node.repeated else f"{name}.")

    def visit_graph(g: Graph, prefix: str) -> None:
        for node in sorted(g.nodes, key=lambda n: not n.is_parameter):  # stable: the module's own first
            visit(node, prefix)

    visit_graph(graph, "")
    return out


def summary_dict(graph: Graph, trainable: int | None = None) -> dict[str, Any]:
    return {
        "name": graph.name,
        "inputs": {name: {"shape": [int(d) for d in t.shape], "dtype": t.dtype} for name, t in graph.inputs.items()},
        "layers": [asdict(r) for r in rows(graph)],
        "total_params": graph.param_count,
        "trainable_params": graph.param_count if trainable is None else trainable,
        "macs": graph.macs,
    }


def summary_text(graph: Graph, trainable: int | None = None) -> str:
    trainable = graph.param_count if trainable is None else trainable
    table = [("Layer (type)", "Output shape", "Params", "MACs")]
    for r in rows(graph):
        shape = "(B, " + ", ".join(map(str, r.output_shape)) + ")"
        table.append(("  " * r.depth + f"{r.name} ({r.op})", shape, f"{r.params:,}", f"{r.macs:,}"))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    rule = "-" * (sum(widths) + 6)
    lines = [graph.name, rule]
    for i, row in enumerate(table):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]:>{widths[3]}}")
        if i == 0:
            lines.append(rule)
    lines += [
        rule,
        f"Total params: {graph.param_count:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {graph.param_count - trainable:,}",
        f"MACs: {graph.macs:,} ({graph.macs / 1e9:.2f} G)",
        "Input: " + ", ".join(f"{n} (B, {', '.join(map(str, t.shape))}) {t.dtype}" for n, t in graph.inputs.items()),
    ]
    return "\n".join(lines) + "\n"
