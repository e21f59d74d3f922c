"""Stage 3: spec -> IR program. Names every node, resolves `in` references and block uses, parses expressions."""

from __future__ import annotations

from typing import Any

from specc.errors import SourceLoc, SpecError, did_you_mean
from specc.expr import Expr, ExprError, parse
from specc.ir import BLOCK_INPUT, BlockParam, Graph, Node, Program
from specc.load import Document, JsonPath
from specc.naming import Namespace, layer_name_problem, names_pattern_problem
from specc.ops import Op, TensorType, get_op
from specc.spec.document import BlockLayer, BlockSpec, SequentialLayer, Spec
from specc.spec.types import literal_strings


def resolve(spec: Spec, doc: Document) -> Program:
    _check_class_names(spec, doc)
    order = _block_order(spec, doc)
    blocks = {name: _block_graph(name, spec.blocks[name], spec, doc) for name in order}
    inputs = {name: TensorType(tuple(i.shape), i.dtype) for name, i in spec.input_types().items()}
    model = _graph(spec.name, inputs, spec.layers, ("layers",), spec.output, ("output",), spec, doc)
    model.constants = dict(spec.params)
    return Program(model, blocks)


def _check_class_names(spec: Spec, doc: Document) -> None:
    """The model's class and the blocks' classes live side by side in model.py, and a block's `__init__`
    creates the blocks it uses: no two classes share a name, and no block parameter, var or dim (locals of
    `__init__`) hides a class."""
    if spec.name in spec.blocks:
        model_loc, block_loc = doc.loc(("name",)), doc.key_loc(("blocks", spec.name))
        # Point at the later of the two in the spec's own file (with `extends`, the block may be another's).
        ours = [loc for loc in (model_loc, block_loc) if loc.file == doc.file] or [model_loc]
        later = max(ours)
        first = block_loc if later == model_loc else model_loc
        raise SpecError(
            "E107",
            f"duplicate class name `{spec.name}`: the model (`name`) and a block have it (first used at {first})",
            later,
            hint="the model and its blocks become classes of one model.py; rename one of them",
        )
    classes = {spec.name, *spec.blocks}
    for name, block in spec.blocks.items():
        path: JsonPath = ("blocks", name)
        locals_: list[tuple[str, str, SourceLoc]] = [
            *(("parameter", key, doc.key_loc((*path, "params", key))) for key in block.params),
            *(("var", key, doc.key_loc((*path, "vars", key))) for key in block.vars),
            *(("dim", dim, doc.loc((*path, "dims", j))) for j, dim in enumerate(block.dims or [])),
        ]
        for kind, key, loc in locals_:
            if key in classes:
                raise SpecError(
                    "E106",
                    f"invalid name {key!r}: `{key}` is a class of the generated model.py, which a block {kind}"
                    " would hide in `__init__`",
                    loc,
                )


def _block_graph(name: str, block: BlockSpec, spec: Spec, doc: Document) -> Graph:
    path: JsonPath = ("blocks", name)
    # The real types are known per instance.
    inputs = {BLOCK_INPUT: TensorType(()), **{extra: TensorType(()) for extra in block.inputs or []}}
    graph = _graph(name, inputs, block.layers, (*path, "layers"), block.output, (*path, "output"), spec, doc)
    graph.block_params = {
        key: BlockParam(decl.type, decl.default, required=decl.default is None)
        for key, decl in block.param_decls().items()
    }
    graph.block_vars = {
        key: _parse_value(value, frozenset(), (*path, "vars", key), doc) for key, value in block.vars.items()
    }
    graph.constants = dict(spec.params)
    graph.input_dims = tuple(block.dims) if block.dims else None
    return graph


def _graph(
    name: str,
    inputs: dict[str, TensorType],
    items: list[Any],
    path: JsonPath,
    output: str | None,
    output_path: JsonPath,
    spec: Spec,
    doc: Document,
) -> Graph:
    namespace = Namespace()
    for input_name in inputs:
        namespace.claim(input_name)
    # User-given names are claimed first, so generated names never take them.
    _claim_user_names(items, path, namespace, doc)
    nodes: list[Node] = []
    # A block's layers start from `x`; a model's from its input, if it has only one.
    previous = BLOCK_INPUT if BLOCK_INPUT in inputs else next(iter(inputs)) if len(inputs) == 1 else None
    # The inputs, then the nodes so far, in order (a dict: membership in O(1), order for hints).
    defined: dict[str, Node | None] = dict.fromkeys(inputs)
    for i, item in enumerate(items):
        node = _node(item, (*path, i), namespace, spec, doc)
        node.inputs = _inputs(item, (*path, i), previous, defined, doc)
        node.tie = _tie(item, (*path, i), defined, doc)
        nodes.append(node)
        defined[node.name] = node
        previous = node.name
    result = output or nodes[-1].name
    if result not in defined:
        raise SpecError(
            "E108", f"output `{result}` is not a layer", doc.loc(output_path), hint=did_you_mean(result, list(defined))
        )
    return Graph(name, inputs, nodes, result)


def _claim_user_names(items: list[Any], path: JsonPath, namespace: Namespace, doc: Document) -> None:
    first: dict[str, JsonPath] = {}
    for i, item in enumerate(items):
        name = getattr(item, "name", None)
        if name is None:
            continue
        if name in namespace:
            earlier = f" (first used at {doc.loc((*first[name], 'name'))})" if name in first else " (an input's name)"
            raise SpecError("E107", f"duplicate node name `{name}`{earlier}", doc.loc((*path, i, "name")))
        problem = layer_name_problem(name)
        if problem:
            raise SpecError("E106", f"invalid name {name!r}: {problem}", doc.loc((*path, i, "name")))
        namespace.claim(name)
        first[name] = (*path, i)


def _item_op(item: Any) -> Op | None:
    """The registered op of a layer item (None for sequentials and block uses)."""
    if isinstance(item, (SequentialLayer, BlockLayer)):
        return None
    return get_op(item if isinstance(item, str) else item.op)


def _inputs(
    item: Any, path: JsonPath, previous: str | None, defined: dict[str, Node | None], doc: Document
) -> tuple[str, ...]:
    """The node's inputs: `in` (default: the previous layer), then the nodes its reference parameters name."""
    op = _item_op(item)
    refs = getattr(item, "in_", None)
    if op is not None and op.max_inputs == 0:
        if refs is not None:
            raise SpecError("E206", f"{op.name} takes no inputs, so it has no `in`", doc.loc((*path, "in")))
        return ()
    if refs is None:
        if previous is None:
            raise SpecError(
                "E108", "the first layer of a model with several inputs must say which it takes (`in`)", doc.loc(path)
            )
        refs_list = [previous]
    else:
        refs_list = [refs] if isinstance(refs, str) else list(refs)
    for ref in refs_list:
        if ref not in defined:
            raise SpecError(
                "E108",
                f"`in` refers to `{ref}`, which is not an input or an earlier layer",
                doc.loc((*path, "in")),
                hint=did_you_mean(ref, list(defined)),
            )
    for key in op.ref_params if op is not None else ():
        ref = getattr(item, key, None)
        if ref is None:
            continue
        if ref not in defined:
            raise SpecError(
                "E108",
                f"`{key}` refers to `{ref}`, which is not an input or an earlier layer",
                doc.loc((*path, key)),
                hint=did_you_mean(ref, list(defined)),
            )
        refs_list.append(ref)
    return tuple(refs_list)


def _tie(item: Any, path: JsonPath, defined: dict[str, Node | None], doc: Document) -> str | None:
    """The earlier layer whose weight this layer shares (`tie`), checked to exist; shapes are checked later.

    `defined`: the graph's inputs (None) and earlier layers, by name."""
    target = getattr(item, "tie", None)
    if target is None:
        return None
    node = defined.get(target)
    if node is None:
        earlier = [name for name, n in defined.items() if n is not None]
        raise SpecError(
            "E108",
            f"`tie` refers to `{target}`, which is not an earlier layer",
            doc.loc((*path, "tie")),
            hint=did_you_mean(target, earlier) or "a layer shares the weight of a layer before it",
        )
    if node.kind != "op":
        raise SpecError(
            "E104",
            f"`tie` must name a layer with a weight, but `{target}` is a {node.kind}",
            doc.loc((*path, "tie")),
        )
    return target  # type: ignore[no-any-return]


def _node(item: Any, path: JsonPath, namespace: Namespace, spec: Spec, doc: Document) -> Node:
    when = _condition(getattr(item, "when", None), (*path, "when"), doc)
    if isinstance(item, str):
        op = get_op(item)
        assert op is not None
        return Node(namespace.create(op.prefix), "op", item, {}, (), path)
    if isinstance(item, SequentialLayer):
        name = item.name or namespace.create("seq")
        children: dict[str, Node] = {}
        for j, child in enumerate(item.layers):
            child_path = (*path, "layers", j)
            child_op = _item_op(child)
            keys = ("in_", "when", "tie", *(child_op.ref_params if child_op is not None else ()))
            for key in keys:
                if getattr(child, key, None) is not None:
                    raise SpecError(
                        "E104",
                        f"`{key.rstrip('_')}` is not allowed inside a sequential (its layers form a chain)",
                        doc.loc((*child_path, key.rstrip("_"))),
                    )
            child_node = _node(child, child_path, Namespace(), spec, doc)
            # A child is numbered like torchvision's (`features.0`) unless it has a name (`heads.head`).
            child_node.name = getattr(child, "name", None) or str(j)
            earlier = children.get(child_node.name)
            if earlier is not None:
                first = doc.loc(earlier.path)
                raise SpecError(
                    "E107",
                    f"duplicate name `{child_node.name}` in sequential `{name}` (first used at {first})",
                    doc.loc((*child_path, "name")),
                )
            problem = layer_name_problem(child_node.name, sequential=True) if getattr(child, "name", None) else None
            if problem:
                raise SpecError("E106", f"invalid name {child_node.name!r}: {problem}", doc.loc((*child_path, "name")))
            child_node.label = f"{name}.{child_node.name}"
            children[child_node.name] = child_node
        return Node(name, "sequential", "sequential", {}, (), path, children=list(children.values()), when=when)
    if isinstance(item, BlockLayer):
        if item.block not in spec.blocks:
            raise SpecError(
                "E109",
                f"unknown block `{item.block}`",
                doc.loc((*path, "block")),
                hint=did_you_mean(item.block, list(spec.blocks)) or "define it under `blocks:`",
            )
        if item.when is not None and spec.blocks[item.block].inputs:
            raise SpecError(
                "E104",
                f"block `{item.block}` takes several inputs, so it cannot have a `when` condition",
                doc.loc((*path, "when")),
            )
        args = {key: _parse_value(value, frozenset(), (*path, "args", key), doc) for key, value in item.args.items()}
        repeat = _parse_value(item.repeat, frozenset(), (*path, "repeat"), doc)
        if item.names is not None:
            if item.repeat is None:
                raise SpecError(
                    "E104",
                    "`names` names the instances of a `repeat`, but this block has none",
                    doc.loc((*path, "names")),
                )
            if item.names.count("{i}") != 1:
                raise SpecError(
                    "E104",
                    f"`names` must contain the index `{{i}}` once, e.g. `layer_{{i}}`, but it is {item.names!r}",
                    doc.loc((*path, "names")),
                )
            problem = names_pattern_problem(item.names)
            if problem:
                raise SpecError("E106", f"invalid `names` {item.names!r}: {problem}", doc.loc((*path, "names")))
        stem = item.block[0].lower() + "".join(f"_{c.lower()}" if c.isupper() else c for c in item.block[1:])
        name = item.name or namespace.create(stem.replace("__", "_"))
        return Node(name, "block", item.block, args, (), path, when=when, repeat=repeat, names=item.names)
    op = get_op(item.op)
    assert op is not None
    if op.kind == "parameter" and item.when is not None:
        raise SpecError("E104", f"a {op.name} cannot have a `when` condition", doc.loc((*path, "when")))
    args = {}
    user_values = item.model_dump(exclude_unset=True, exclude={"op", "name", "in_", "when", "tie"})
    for key, value in user_values.items():
        literals = literal_strings(op.Params.model_fields[key].annotation)
        args[key] = _parse_value(value, literals, (*path, key), doc)
    return Node(item.name or namespace.create(op.prefix), "op", item.op, args, (), path, when=when)


def _condition(value: Any, path: JsonPath, doc: Document) -> Expr | bool | None:
    if value is None or isinstance(value, bool):
        return value
    return _parse_value(value, frozenset(), path, doc)  # type: ignore[no-any-return]


def _parse_value(value: Any, literals: frozenset[str], path: JsonPath, doc: Document) -> Any:
    if isinstance(value, list):
        return [_parse_value(v, literals, (*path, i), doc) for i, v in enumerate(value)]
    if isinstance(value, str) and value not in literals and "*" not in literals:
        try:
            return parse(value)
        except ExprError as exc:
            raise SpecError("E301", exc.message, doc.loc(path)) from None
    return value


def _block_order(spec: Spec, doc: Document) -> list[str]:
    """Blocks in dependency order; a block that uses itself, directly or not, is an error."""
    uses: dict[str, list[tuple[str, JsonPath]]] = {}

    def collect(items: list[Any], path: JsonPath, into: list[tuple[str, JsonPath]]) -> None:
        for i, item in enumerate(items):
            if isinstance(item, BlockLayer):
                into.append((item.block, (*path, i, "block")))
            elif isinstance(item, SequentialLayer):
                collect(item.layers, (*path, i, "layers"), into)

    for name, block in spec.blocks.items():
        collect(block.layers, ("blocks", name, "layers"), uses.setdefault(name, []))
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            return
        state[name] = "active"
        for used, path in uses.get(name, []):
            if used == name or (used in state and state[used] == "active"):
                cycle = " -> ".join([*chain, name, used])
                raise SpecError("E110", f"block `{used}` is used inside itself ({cycle})", doc.loc(path))
            if used in spec.blocks:
                visit(used, [*chain, name])
        state[name] = "done"
        order.append(name)

    for name in spec.blocks:
        visit(name, [])
    return order
