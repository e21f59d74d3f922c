"""Stage 3: spec -> IR graph. Names every node, resolves `in` references, parses expressions."""

from __future__ import annotations

from typing import Any

from specc.errors import SpecError, did_you_mean
from specc.expr import ExprError, parse
from specc.ir import Graph, Node
from specc.load import Document, JsonPath
from specc.naming import Namespace
from specc.ops import TensorType, get_op
from specc.spec.document import SequentialLayer, Spec
from specc.spec.types import literal_strings


def resolve(spec: Spec, doc: Document) -> Graph:
    inputs = {name: TensorType(tuple(i.shape), i.dtype) for name, i in spec.input_types().items()}
    input_paths: dict[str, tuple[str | int, ...]] = (
        {"x": ("input",)} if spec.input is not None else {name: ("inputs", name) for name in inputs}
    )
    namespace = Namespace()
    for name in inputs:
        namespace.claim(name)
    # User-given names are claimed first, so generated names never take them.
    _claim_user_names(spec.layers, ("layers",), namespace, doc, set(inputs))
    nodes: list[Node] = []
    previous = next(iter(inputs)) if len(inputs) == 1 else None
    defined = list(inputs)
    for i, item in enumerate(spec.layers):
        node = _node(item, ("layers", i), namespace, doc)
        node.inputs = _inputs(item, ("layers", i), previous, defined, doc)
        nodes.append(node)
        defined.append(node.name)
        previous = node.name
    output = spec.output or nodes[-1].name
    if output not in defined:
        raise SpecError(
            "E108", f"output `{output}` is not a node", doc.loc(("output",)), hint=did_you_mean(output, defined)
        )
    return Graph(spec.name, inputs, nodes, output, constants=dict(spec.params), input_paths=input_paths)


def _claim_user_names(items: list[Any], path: JsonPath, namespace: Namespace, doc: Document, taken: set[str]) -> None:
    first: dict[str, JsonPath] = {}
    for i, item in enumerate(items):
        name = getattr(item, "name", None)
        if name is None:
            continue
        if name in namespace:
            earlier = f" (first used at {doc.loc((*first[name], 'name'))})" if name in first else " (an input name)"
            raise SpecError("E107", f"duplicate node name `{name}`{earlier}", doc.loc((*path, i, "name")))
        namespace.claim(name)
        first[name] = (*path, i)


def _inputs(item: Any, path: JsonPath, previous: str | None, defined: list[str], doc: Document) -> tuple[str, ...]:
    refs = getattr(item, "in_", None)
    if refs is None:
        if previous is None:
            raise SpecError(
                "E108", "the first layer of a model with several inputs must say which it takes (`in`)", doc.loc(path)
            )
        return (previous,)
    refs_list = [refs] if isinstance(refs, str) else list(refs)
    for ref in refs_list:
        if ref not in defined:
            raise SpecError(
                "E108",
                f"`in` refers to `{ref}`, which is not an input or an earlier layer",
                doc.loc((*path, "in")),
                hint=did_you_mean(ref, defined),
            )
    return tuple(refs_list)


def _node(item: Any, path: JsonPath, namespace: Namespace, doc: Document) -> Node:
    if isinstance(item, str):
        op = get_op(item)
        assert op is not None
        return Node(namespace.create(op.prefix), "op", item, {}, (), path)
    if isinstance(item, SequentialLayer):
        children = []
        local = Namespace()
        for j, child in enumerate(item.layers):
            child_node = _node(child, (*path, "layers", j), local, doc)
            if getattr(child, "in_", None) is not None:
                raise SpecError(
                    "E108",
                    "layers inside a sequential take the previous layer; `in` is not allowed here",
                    doc.loc((*path, "layers", j, "in")),
                )
            child_node.name = str(j)
            child_node.inputs = (str(j - 1),) if j else ()
            children.append(child_node)
        name = item.name or namespace.create("seq")
        return Node(name, "sequential", "sequential", {}, (), path, children=children)
    op = get_op(item.op)
    assert op is not None
    args: dict[str, Any] = {}
    user_values = item.model_dump(exclude_unset=True, exclude={"op", "name", "in_"})
    for key, value in user_values.items():
        literals = literal_strings(op.Params.model_fields[key].annotation)
        args[key] = _parse_value(value, literals, (*path, key), doc)
    return Node(item.name or namespace.create(op.prefix), "op", item.op, args, (), path)


def _parse_value(value: Any, literals: frozenset[str], path: JsonPath, doc: Document) -> Any:
    if isinstance(value, list):
        return [_parse_value(v, literals, (*path, i), doc) for i, v in enumerate(value)]
    if isinstance(value, str) and value not in literals and "*" not in literals:
        try:
            return parse(value)
        except ExprError as exc:
            raise SpecError("E301", exc.message, doc.loc(path)) from None
    return value
