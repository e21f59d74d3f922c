"""Architecture diagrams from the inferred IR: Mermaid (for MODEL.md and GitHub) and Graphviz DOT.

Blocks and sequentials are subgraphs (collapsible in viewers that support it); edges carry the shape of
the tensor they transport. Every label is built from validated names, op names and numbers only.
"""

from dataclasses import dataclass, field

from specc.ir import Graph, Node
from specc.ops import TensorType

FORMATS = ("mermaid", "dot")


@dataclass
class _Group:
    id: str
    label: str
    members: list[str] = field(default_factory=list)  # node ids
    children: list["_Group"] = field(default_factory=list)


@dataclass
class Diagram:
    nodes: dict[str, str] = field(default_factory=dict)  # id -> label
    shapes: dict[str, str] = field(default_factory=dict)  # id -> "input" | "op"
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, label)
    root: _Group = field(default_factory=lambda: _Group("root", ""))


def _shape(t: TensorType) -> str:
    return "(" + ", ".join(["B", *(str(int(d)) for d in t.shape)]) + ")"


def diagram(graph: Graph) -> Diagram:
    d = Diagram()
    exits: dict[str, tuple[str, TensorType]] = {}
    for name, t in graph.inputs.items():
        input_id = f"i_{name}"  # prefixed: an input may be named like a Mermaid keyword (`end`)
        d.nodes[input_id] = f"{name} {_shape(t)}"
        d.shapes[input_id] = "input"
        d.root.members.append(input_id)
        exits[name] = (input_id, t)
    _add_graph(d, graph, "", exits, d.root)
    out_id, out_type = exits[graph.output]
    d.nodes["o_output"] = f"output {_shape(out_type)}"
    d.shapes["o_output"] = "input"
    d.root.members.append("o_output")
    d.edges.append((out_id, "o_output", _shape(out_type)))
    return d


def _node_id(qualified: str) -> str:
    return "n_" + qualified.replace(".", "_")


def _add_graph(d: Diagram, graph: Graph, prefix: str, exits: dict[str, tuple[str, TensorType]], group: _Group) -> None:
    for node in graph.nodes:
        sources = [exits[ref] for ref in node.inputs]
        exits[node.name] = _add_node(d, node, prefix, sources, group)


def _add_node(
    d: Diagram, node: Node, prefix: str, sources: list[tuple[str, TensorType]], group: _Group
) -> tuple[str, TensorType]:
    qualified = f"{prefix}{node.name}"
    if not node.present:
        return sources[0]
    assert node.out is not None
    if node.kind == "op":
        node_id = _node_id(qualified)
        d.nodes[node_id] = f"{qualified}: {node.op}"
        d.shapes[node_id] = "op"
        group.members.append(node_id)
        for source_id, t in sources:
            d.edges.append((source_id, node_id, _shape(t)))
        return node_id, node.out
    sub = _Group(_node_id(qualified) + "_group", f"{qualified}: {node.op if node.kind == 'block' else 'sequential'}")
    group.children.append(sub)
    current = sources
    if node.kind == "sequential":
        for child in node.children:
            current = [_add_node(d, child, f"{qualified}.", current, sub)]
        return current[0]
    for index, instance in enumerate(node.instances):
        instance_name = f"{qualified}.{node.instance_name(index)}"
        inner_prefix = f"{instance_name}." if node.repeated else f"{qualified}."
        target = sub
        if node.repeated:
            target = _Group(_node_id(instance_name) + "_group", f"{instance_name}: {node.op}")
            sub.children.append(target)
        inner_exits = {name: current[0] if i == 0 else sources[i] for i, name in enumerate(instance.inputs)}
        _add_graph(d, instance, inner_prefix, inner_exits, target)
        current = [inner_exits[instance.output]]
        assert instance.call_output is not None
        current = [(current[0][0], instance.call_output)]
    return current[0]


def to_mermaid(d: Diagram) -> str:
    lines = ["flowchart TD"]

    def emit_group(group: _Group, indent: str) -> None:
        for member in group.members:
            label = d.nodes[member]
            lines.append(
                f'{indent}{member}[/"{label}"/]' if d.shapes[member] == "input" else f'{indent}{member}["{label}"]'
            )
        for child in group.children:
            lines.append(f'{indent}subgraph {child.id} ["{child.label}"]')
            emit_group(child, indent + "  ")
            lines.append(f"{indent}end")

    emit_group(d.root, "  ")
    lines += [f'  {a} -- "{label}" --> {b}' for a, b, label in d.edges]
    return "\n".join(lines) + "\n"


def to_dot(d: Diagram, name: str) -> str:
    lines = [f'digraph "{name}" {{', "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']

    def emit_group(group: _Group, indent: str) -> None:
        for member in group.members:
            shape = ", shape=parallelogram" if d.shapes[member] == "input" else ""
            lines.append(f'{indent}{member} [label="{d.nodes[member]}"{shape}];')
        for child in group.children:
            lines.append(f"{indent}subgraph cluster_{child.id} {{")
            lines.append(f'{indent}  label="{child.label}";')
            emit_group(child, indent + "  ")
            lines.append(f"{indent}}}")

    emit_group(d.root, "  ")
    lines += [f'  {a} -> {b} [label="{label}"];' for a, b, label in d.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"
