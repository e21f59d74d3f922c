"""Where an in-place op may overwrite its input: a check over one inferred graph (part of shape inference).

`relu(inplace: true)` writes its result into its input's memory. That is only safe when nothing else sees
that memory afterwards, or saw it in a way the backward pass depends on. This module follows which values
share memory (views, in-place ops, blocks that return their input) and refuses an in-place op when

- its input is the graph's input (the caller's tensor: a residual connection would read the overwritten
  value),
- another layer reads the memory it overwrites (before or after it: the reader either sees the new values
  or saved the old ones for its backward pass), or the graph returns that memory as it was,
- what it overwrites may not be written at all (`Op.keeps_output`): an output that autograd keeps for the
  backward pass (relu, sigmoid, softmax, ...), a view that torch lets no in-place op modify (chunk,
  split), elements that share memory (expand), a parameter's value; or a value that may share memory
  with one of those (a view of it, dropout's output, which in eval mode is its input).

Without these rules the generated model computes wrong values without an error, or fails in its first
backward pass. The ops say what they do (`Op.aliases`, `Op.is_view`, `Op.keeps_output`); this module
only connects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from specc.errors import SpecError
from specc.ir import Graph, Node
from specc.load import Document
from specc.ops import get_op


@dataclass
class _Value:
    """A value of the graph as memory: the value it may share memory with (`base`), and its readers."""

    name: str
    base: str | None  # the value whose memory this one may be (a view, an in-place result); None: new memory
    keeper: str | None  # why no in-place op may overwrite this memory (see `Op.keeps_output`), if so
    readers: list[_Step] = field(default_factory=list)  # the steps that read this value's elements


@dataclass(frozen=True)
class _Step:
    """A layer as this check sees it: a node, or a child of a sequential (flattened)."""

    node: Node
    reads: tuple[str, ...]  # values whose elements it reads (none for a pure view)
    uses: tuple[str, ...]  # values it takes as inputs
    out: str
    shares: bool  # its output may be its first input's memory (and so inherits its keeper)
    keeper: str | None
    in_place: bool


def check_in_place(graph: Graph, doc: Document) -> None:
    """Refuse in-place ops that overwrite memory something else reads; record on `graph` whether its output
    may be its input's memory (for the graphs that call it as a block)."""
    values = {name: _Value(name, None, None) for name in graph.inputs}
    steps: list[_Step] = []
    for node in graph.nodes:
        _flatten(node, node.inputs, node.name, steps)
    for step in steps:
        base = step.uses[0] if step.shares and step.uses else None
        keeper = step.keeper or (values[base].keeper if base is not None else None)
        for name in step.reads:
            values[name].readers.append(step)
        values[step.out] = _Value(step.out, base, keeper)
    for step in steps:
        if step.in_place:
            _check_step(step, values, graph, doc)
    root = _root(graph.output, values)
    graph.output_shares_input = root in graph.inputs
    graph.output_keeper = values[graph.output].keeper


def _flatten(node: Node, inputs: tuple[str, ...], out: str, steps: list[_Step]) -> None:
    """`node` as steps reading `inputs` and giving `out`; a sequential's children become steps of their own."""
    if not node.present:  # `when` is false: its value is its input
        steps.append(_Step(node, (), inputs, out, shares=True, keeper=None, in_place=False))
        return
    if node.kind == "sequential":
        current = inputs
        for index, child in enumerate(node.children):
            child_out = out if index == len(node.children) - 1 else f"{out}.{index}"
            _flatten(child, current, child_out, steps)
            current = (child_out,)
        return
    if node.kind == "block":
        shares = all(instance.output_shares_input for instance in node.instances)
        keeper = next((g.output_keeper for g in reversed(node.instances) if g.output_keeper), None)
        steps.append(_Step(node, inputs, inputs, out, shares=shares, keeper=keeper, in_place=False))
        return
    op = get_op(node.op)
    assert op is not None and node.params is not None and node.out is not None
    view = op.is_view(node.params)
    in_place = bool(getattr(node.params, "inplace", False))
    # A view reads nothing; an in-place op reads the memory it overwrites, which nothing else sees afterwards
    # (its own check), so only its other inputs count as read.
    steps.append(
        _Step(
            node,
            () if view else inputs[1:] if in_place else inputs,
            inputs,
            out,
            shares=op.aliases(node.params),
            keeper=op.keeps_output(node.params, node.out),
            in_place=in_place,
        )
    )


def _root(name: str, values: dict[str, _Value]) -> str:
    while (base := values[name].base) is not None:
        name = base
    return name


def _descends(name: str, ancestor: str, values: dict[str, _Value]) -> bool:
    current: str | None = name
    while current is not None:
        if current == ancestor:
            return True
        current = values[current].base
    return False


def _check_step(step: _Step, values: dict[str, _Value], graph: Graph, doc: Document) -> None:
    """Refuse `step` (an in-place op) if what it overwrites is seen by anything else. The order of the
    layers does not matter: a reader before it may have saved the old values for its backward pass."""
    target = step.uses[0]
    root = _root(target, values)
    what = f"{step.node.op} `{step.node.label or step.node.name}`"
    where = doc.loc((*step.node.path, "inplace") if "inplace" in step.node.args else step.node.path)
    hint = "remove `inplace: true`"

    def refuse(why: str) -> SpecError:
        return SpecError("E202", f"{what} cannot work in place: {why}", where, hint=hint)

    if values[target].keeper:  # first: the most specific reason
        raise refuse(f"it would overwrite `{target}`: {values[target].keeper}")
    if root in graph.inputs:
        owner = "the block's" if graph.is_block else "the model's"
        raise refuse(f"it would overwrite {owner} input `{root}`, a tensor its caller may still use")
    # Every value in this memory but the ones made from this step's result sees the overwrite.
    stale = [v for v in values.values() if _root(v.name, values) == root and not _descends(v.name, step.out, values)]
    for value in stale:
        other = next((r for r in value.readers if r is not step), None)
        shown = f"`{value.name}`" + (f" (the memory of `{target}`)" if value.name != target else "")
        if other is not None:
            reader = other.node.label or other.node.name
            raise refuse(f"it would overwrite {shown}, which {other.node.op} `{reader}` also reads")
        if value.name == graph.output:
            raise refuse(f"it would overwrite {shown}, which the {'block' if graph.is_block else 'model'} returns")
