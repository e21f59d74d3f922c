"""Stage 4: shape inference. Evaluates parameter expressions and conditions, validates each op's
parameters, runs its shape rule, and expands every block use into inferred instances. Fills in every
inferred size, output type, parameter count and MAC count."""

from __future__ import annotations

import ast
import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from specc.errors import SpecError, did_you_mean
from specc.expr import Expr, ExprError, parse
from specc.inplace import check_in_place
from specc.ir import BLOCK_INPUT, Graph, Node, Program, walk
from specc.load import Document, JsonPath
from specc.ops import Inferred, Op, ShapeError, TensorType, get_op
from specc.ops.base import FLOAT_DTYPES, MAX_NUMEL
from specc.symbolic import Dim, has_dim, render, substitute

MAX_REPEAT = 1000
# Block uses nested one inside another: each level is a class inside a class, and inference and code
# generation recurse once per level. 32 is far past any real model (a ResNet nests 2).
MAX_BLOCK_DEPTH = 32
# Layers that block uses expand to, all instances together (nested ones included): the largest bundled
# model has 440; inference takes ~0.05 ms a layer, so even a spec that is only caught when the count reaches
# the limit is refused in about half a second. Counted before expanding where it can be (`_minimum_layers`).
MAX_LAYERS = 10_000


@dataclass
class _Expansion:
    """What expanding block uses has made so far, against MAX_LAYERS and MAX_BLOCK_DEPTH."""

    minimum: dict[str, int]  # per block: the fewest layers one instance holds (capped at MAX_LAYERS + 1)
    # per block whose `minimum` is over the limit: the repeat inside it (or a block it uses) that crosses it
    crossing: dict[str, tuple[JsonPath, str]] = field(default_factory=dict)
    layers: int = 0  # layers of the block instances made so far
    depth: int = 0  # block uses being expanded, one inside the other


def infer(program: Program, doc: Document) -> Program:
    """A copy of `program` whose model graph (and every block instance in it) carries shapes and counts."""
    _check_inputs(program.model.inputs, doc)
    expansion = _Expansion({})
    for name, block in program.blocks.items():  # in dependency order: a block after those it uses
        expansion.minimum[name] = _minimum_layers(block, expansion)
    model = _infer_graph(
        program.model, dict(program.model.inputs), dict(program.model.constants), program, doc, expansion
    )
    return Program(model, program.blocks)


def _check_inputs(inputs: dict[str, TensorType], doc: Document) -> None:
    for name, t in inputs.items():
        numel = math.prod(int(d) for d in t.shape)
        if numel > MAX_NUMEL:
            path: JsonPath = ("input", "shape") if "input" in doc.data else ("inputs", name, "shape")
            raise SpecError(
                "E202",
                f"input `{name}` {t.describe()} holds {numel:,} values per sample, more than the limit of 2^40"
                f" ({MAX_NUMEL:,}) on a tensor's size",
                doc.loc(path),
            )


def _minimum_layers(block: Graph, expansion: _Expansion) -> int:
    """The fewest layers one instance of `block` holds: its own, and those of the blocks it uses, repeated
    as often as their `repeat` says where it is known before expansion (a number, or an expression of the
    spec's params alone; any other counts once), a use with `when` not at all.
    Records in `expansion.crossing` the repeat that takes it over MAX_LAYERS, if one does."""
    total = 0
    for node in walk(block.nodes):
        total += 1
        if node.kind != "block" or node.when not in (None, True):
            continue
        times = max(1, min(_static_repeat(node, block), MAX_REPEAT))  # out of range: refused when expanded
        each = expansion.minimum.get(node.op, 1)
        total += times * each
        if total > MAX_LAYERS and block.name not in expansion.crossing:
            if node.op in expansion.crossing:
                expansion.crossing[block.name] = expansion.crossing[node.op]
            else:
                where = (*node.path, "repeat") if node.repeat is not None else (*node.path, "block")
                times_text = f", repeated {times:,} times," if node.repeat is not None else ""
                expansion.crossing[block.name] = (
                    where,
                    f"block `{node.op}`{times_text} makes block `{block.name}` expand to at least {total:,} layers,"
                    f" more than the limit of {MAX_LAYERS:,} (all block instances together)",
                )
        if total > MAX_LAYERS:
            return MAX_LAYERS + 1
    return total


def _static_repeat(node: Node, block: Graph) -> int:
    """A block use's `repeat` if it is known before expansion, else 1 (its least)."""
    if isinstance(node.repeat, int) and not isinstance(node.repeat, bool):
        return node.repeat
    if not isinstance(node.repeat, Expr):
        return 1
    shadowing = {"i", "in_rank", "in_channels", "in_features", *(block.block_params or {}), *block.block_vars}
    shadowing.update(block.input_dims or ())
    if not node.repeat.names <= set(block.constants) - shadowing:
        return 1
    try:
        value = node.repeat.evaluate(block.constants)
    except ExprError:
        return 1
    return int(value) if _is_int(value) else 1


def _infer_graph(
    template: Graph,
    inputs: dict[str, TensorType],
    env: dict[str, Any],
    program: Program,
    doc: Document,
    expansion: _Expansion,
) -> Graph:
    graph = _instantiate(template)
    graph.inputs = inputs
    env = dict(env)
    for name, value in graph.block_vars.items():
        scope = {**env, **input_names(list(inputs.values()))}
        result = evaluate(value, scope, ("blocks", graph.name, "vars", name), doc)
        graph.var_values[name] = result
        env[name] = Dim.named(result, name) if _is_int(result) else result
    graph.env = env
    values: dict[str, TensorType] = dict(inputs)
    for node in graph.nodes:
        try:
            _infer_node(node, [values[ref] for ref in node.inputs], env, program, doc, expansion)
        except SpecError as exc:
            if exc.code == "E201":
                exc.notes += _provenance(graph, node, doc)
            raise
        assert node.out is not None
        values[node.name] = node.out
    for node in graph.nodes:
        if node.tie is not None and node.present:
            _tie_weight(node, graph.node(node.tie), doc)
    check_in_place(graph, doc)
    return graph


def _instantiate(template: Graph) -> Graph:
    """A copy of `template` for inference to fill in: new graph and nodes (sequentials' children too) with
    empty results; what the spec wrote (arguments, expressions, paths) is shared, as nothing changes it.
    (A deep copy would copy every expression's syntax tree, for every instance.)"""
    graph = copy.copy(template)
    graph.nodes = [_fresh(node) for node in template.nodes]
    graph.var_values = {}
    graph.env = {}
    return graph


def _fresh(template: Node) -> Node:
    node = copy.copy(template)
    node.children = [_fresh(child) for child in template.children]
    node.inputs_types, node.tensors, node.shapes, node.instances = (), {}, {}, []
    return node


def _tie_weight(node: Node, target: Node, doc: Document) -> None:
    """`node` shares `target`'s weight: the shapes must agree, and the shared tensor counts once (as
    `model.parameters()` yields it once, under the earlier layer's name)."""
    where = doc.loc((*node.path, "tie"))
    if not target.present:
        raise SpecError(
            "E207", f"`{node.name}` ties its weight to `{target.name}`, which is absent (its `when` is false)", where
        )
    mine, theirs = node.shapes.get("weight"), target.shapes.get("weight")
    assert mine is not None, f"tieable op {node.op} gave no weight shape"
    if theirs is None:
        raise SpecError("E207", f"`tie` names {target.op} `{target.name}`, which has no weight to share", where)
    if tuple(int(d) for d in mine) != tuple(int(d) for d in theirs):
        shown = "x".join(str(int(d)) for d in mine), "x".join(str(int(d)) for d in theirs)
        raise SpecError(
            "E207",
            f"{node.op} `{node.label or node.name}` has a {shown[0]} weight, but {target.op} `{target.name}`,"
            f" whose weight it shares, has a {shown[1]} one",
            where,
            hint="tied weights must have the same shape (a linear tied to an embedding maps embedding_dim"
            " features to num_embeddings)",
        )
    node.param_count -= node.tensors.pop("weight")


def _provenance(graph: Graph, node: Node, doc: Document) -> list[str]:
    """Where a node's input came from: the layer that produced it (and what a flatten flattened)."""
    notes = []
    for ref in node.inputs:
        if ref in graph.inputs:
            notes.append(f"the input is the model input `{ref}` {graph.inputs[ref].describe()}")
            continue
        producer = graph.node(ref)
        assert producer.out is not None
        text = (
            f"{doc.loc(producer.path)}: the input comes from {producer.op} `{producer.name}`, {producer.out.describe()}"
        )
        if producer.op == "flatten" and producer.inputs_types:
            before = producer.inputs_types[0]
            sizes = "*".join(str(d) for d in before.shape)
            text += f", flattened from {before.describe()}: {sizes} = {producer.out.shape[-1]}"
        notes.append(text)
    return notes


def _infer_node(
    node: Node,
    inputs: list[TensorType],
    env: dict[str, Any],
    program: Program,
    doc: Document,
    expansion: _Expansion,
) -> None:
    node.inputs_types = tuple(inputs)
    scope = {**env, **input_names(inputs)}
    if node.when is not None and not _condition(node, scope, doc):
        op = get_op(node.op) if node.kind == "op" else None
        masks = sum(node.args.get(key) is not None for key in op.ref_params) if op is not None else 0
        if len(inputs) - masks != 1:  # absent, the node's value is its one input (masks aside)
            raise SpecError(
                "E206", f"`{node.name}` has a `when` condition, so it needs exactly one input", doc.loc(node.path)
            )
        node.present, node.out = False, inputs[0]
        return
    if node.kind == "sequential":
        current = inputs
        for child in node.children:
            _infer_node(child, current, env, program, doc, expansion)
            child_op = get_op(child.op) if child.kind == "op" else None
            reason = child_op.chainable(child.params) if child_op is not None else None
            if reason:
                raise SpecError(
                    "E104",
                    f"{child.op} `{child.label}` cannot be a layer of a sequential: {reason}",
                    doc.loc(child.path),
                    hint="make it a layer of its own (outside the sequential), with `in` naming its inputs",
                )
            assert child.out is not None
            current = [child.out]
        node.out = current[0]
        node.param_count = sum(c.param_count for c in node.children)
        node.macs = sum(c.macs for c in node.children)
        return
    if node.kind == "block":
        expansion.depth += 1
        try:
            _infer_block(node, inputs, env, program, doc, expansion)
        finally:
            expansion.depth -= 1
        return
    op = get_op(node.op)
    assert op is not None
    given = len(inputs) - sum(node.args.get(key) is not None for key in op.ref_params)  # without masks
    if given < op.min_inputs or (op.max_inputs is not None and given > op.max_inputs):
        if op.min_inputs == op.max_inputs:
            wanted = str(op.min_inputs)
        elif op.max_inputs is None:
            wanted = f"at least {op.min_inputs}"
        else:
            wanted = f"{op.min_inputs} to {op.max_inputs}"
        raise SpecError("E206", f"{node.op} takes {wanted} input(s), but `{node.name}` has {given}", doc.loc(node.path))
    values = {key: evaluate(value, scope, (*node.path, key), doc) for key, value in node.args.items()}
    try:
        params = op.Params.model_validate(values)
    except ValidationError as exc:
        raise _parameter_error(node, values, exc, doc) from None
    # Validation turns Dims into plain ints; keep the symbolic values for the block's class code.
    node.params = params.model_copy(update={k: v for k, v in values.items() if has_dim(v)})
    try:
        result = op.infer(node.params, inputs)
    except ShapeError as exc:
        where = (*node.path, exc.field) if exc.field and exc.field in node.args else node.path
        message = exc.message.removeprefix(f"{node.op} ").removeprefix(f"{node.op}: ")
        raise SpecError(
            exc.code, f"{node.op} `{node.label or node.name}`: {message}", doc.loc(where), hint=exc.hint
        ) from None
    node.out = _layout(op, inputs[:given], result.out)
    node.param_count, node.macs = result.params, result.macs
    _check_sizes(node, result, doc)
    if result.params and node.out.dtype == "float32" and not any(t.dtype in FLOAT_DTYPES for t in inputs):
        # Floats made of parameters alone (an embedding's rows, a parameter) have the parameters' dtype.
        node.out = replace(node.out, dtype=parameter_dtype(program.model.inputs.values()))
    node.tensors = result.parameters()
    node.shapes = dict(result.shapes)


def _layout(op: Op, inputs: list[TensorType], out: TensorType) -> TensorType:
    """What an op's output inherits from its inputs: computed from broadcast tensors (batch 1) alone, it is
    one too; an op that keeps the layout (element-wise) keeps a non-contiguous layout."""
    if op.kind != "parameter" and inputs and all(t.broadcast for t in inputs) and not out.broadcast:
        out = replace(out, broadcast=True)
    if op.keeps_layout and not all(t.contiguous for t in inputs) and out.contiguous:
        out = replace(out, contiguous=False)
    return out


def _check_sizes(node: Node, result: Inferred, doc: Document) -> None:
    """Every size is at most 2^31 - 1, but their products are not: no parameter tensor, and no sample of a
    layer's output, may hold more than MAX_NUMEL values (torch could not allocate it, even on the meta device)."""
    assert node.out is not None
    what = f"{node.op} `{node.label or node.name}`"
    limit = f"more than the limit of 2^40 ({MAX_NUMEL:,}) on a tensor's size"
    for name, size in result.parameters().items():
        if int(size) > MAX_NUMEL:
            tensor = f"its parameter `{name}`" if name else "its value"
            raise SpecError("E202", f"{what}: {tensor} would hold {int(size):,} values, {limit}", doc.loc(node.path))
    numel = math.prod(int(d) for d in node.out.shape)
    if numel > MAX_NUMEL:
        raise SpecError(
            "E202",
            f"{what}: its output {node.out.describe()} would hold {numel:,} values per sample, {limit}",
            doc.loc(node.path),
        )


def _parameter_error(node: Node, values: dict[str, Any], exc: ValidationError, doc: Document) -> SpecError:
    """A parameter whose value (usually an expression's result) the op's schema refuses."""
    error = exc.errors(include_url=False)[0]
    key = next((p for p in error["loc"] if isinstance(p, str) and p in values), None)
    where = (*node.path, key) if key else node.path
    value = error.get("input")
    written = node.args.get(key) if key else None
    source = f" = `{written.source}`" if isinstance(written, Expr) else ""
    shown = render(value) if isinstance(value, int) else repr(value)
    what = f"`{key}`{source} of {node.op} `{node.label or node.name}`"
    # Point at the spec parameters the expression used: with `extends`, they may be set in another file.
    spec_params = doc.data.get("params") or {}
    used = sorted(written.names & set(spec_params)) if isinstance(written, Expr) else []
    notes = [f"{doc.loc(('params', name))}: `{name}` is {spec_params[name]!r}" for name in used]
    if error["type"] == "int_type" and isinstance(value, float):
        return SpecError(
            "E104", f"{what} evaluates to {shown}, not an integer", doc.loc(where), hint="use `//` for integer division"
        )
    if error["type"] in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter((error.get("ctx") or {}).values()), "?")
        relation = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[error["type"]]
        return SpecError("E104", f"{what} must be {relation} {bound}, but it is {shown}", doc.loc(where), notes=notes)
    message = error["msg"].removeprefix("Input should be ")
    return SpecError("E104", f"{what} must be {message}, but it is {shown}", doc.loc(where))


def _condition(node: Node, scope: dict[str, Any], doc: Document) -> bool:
    if isinstance(node.when, bool):
        return node.when
    assert isinstance(node.when, Expr)
    value = evaluate(node.when, scope, (*node.path, "when"), doc)
    if not isinstance(value, bool):
        raise SpecError(
            "E102",
            f"`when` must be a condition (true or false), but `{node.when.source}` is"
            f" {int(value) if _is_int(value) else value!r}",
            doc.loc((*node.path, "when")),
        )
    return value


def _infer_block(
    node: Node, inputs: list[TensorType], env: dict[str, Any], program: Program, doc: Document, expansion: _Expansion
) -> None:
    template = program.blocks[node.op]
    if expansion.depth > MAX_BLOCK_DEPTH:
        raise SpecError(
            "E104",
            f"block `{node.op}` is used {expansion.depth} blocks deep (a block used inside a block used inside"
            f" ...), more than the limit of {MAX_BLOCK_DEPTH}",
            doc.loc((*node.path, "block")),
            hint="flatten some of the blocks into their users, or repeat a block with `repeat` instead of nesting",
        )
    assert template.block_params is not None
    if len(inputs) != len(template.inputs):
        names = ", ".join(template.inputs)
        raise SpecError(
            "E206",
            f"block `{node.op}` takes {len(template.inputs)} input(s) ({names}), but `{node.name}` has {len(inputs)}",
            doc.loc(node.path),
        )
    others = dict(zip(list(template.inputs)[1:], inputs[1:], strict=True))  # passed to every instance
    for key in node.args:
        if key not in template.block_params:
            raise SpecError(
                "E101",
                f"block `{node.op}` has no parameter `{key}`",
                doc.key_loc((*node.path, "args", key)),
                hint=did_you_mean(key, list(template.block_params)),
            )
    count = 1
    if node.repeat is not None:
        count = evaluate(node.repeat, {**env, **input_names(inputs)}, (*node.path, "repeat"), doc)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_REPEAT:
            raise SpecError(
                "E104",
                f"`repeat` must be an integer from 1 to {MAX_REPEAT}, got {count!r}",
                doc.loc((*node.path, "repeat")),
            )
    current = inputs[0]
    names = block_dim_names(template, current.rank)
    if template.input_dims is not None and len(names) != current.rank:
        raise SpecError(
            "E203",
            f"block `{node.op}` names {len(names)} input dims ({', '.join(names)}), but its input"
            f" {current.describe()} has {current.rank}",
            doc.loc(node.path),
        )
    _check_budget(node, count, expansion, doc)
    layers_each = len(walk(template.nodes))  # an instance's own layers (those of blocks it uses count as made)
    node.instances = []
    for i in range(int(count)):
        scope = {**env, **input_names([current]), **({"i": i} if node.repeat is not None else {})}
        args = _block_args(node, template, scope, doc)
        seeded_input = _seed(current, names)
        body_env = {**template.constants, **{k: Dim.named(v, k) if _is_int(v) else v for k, v in args.items()}}
        if template.input_dims is not None:  # named dims are names in every expression of the block
            body_env.update(zip(names, seeded_input.shape, strict=True))
        try:
            expansion.layers += layers_each
            instance = _infer_graph(template, {BLOCK_INPUT: seeded_input, **others}, body_env, program, doc, expansion)
        except SpecError as exc:
            where = f"{node.label or node.name}.{i}" if node.repeat is not None else node.label or node.name
            arguments = ", ".join(f"{k}={render(v)}" for k, v in args.items())
            exc.notes.append(f"{doc.loc(node.path)}: in `{where}`, an instance of block `{node.op}`({arguments})")
            raise
        instance.env = args  # the values as the caller computed them (for the call site)
        instance.call_input = current
        node.instances.append(instance)
        out = instance.node(instance.output).out if instance.output != BLOCK_INPUT else seeded_input
        assert out is not None
        current = _rebase(out, args, current, instance.var_values, names)
        instance.call_output = current
        _check_budget(node, count - i - 1, expansion, doc)
    node.out = current
    node.param_count = sum(g.param_count for g in node.instances)
    node.macs = sum(g.macs for g in node.instances)


def _check_budget(node: Node, remaining: int, expansion: _Expansion, doc: Document) -> None:
    """Refuse a block use before expanding it when its `remaining` instances cannot fit in MAX_LAYERS with
    the layers made so far: each holds at least `expansion.minimum` layers."""
    each = expansion.minimum.get(node.op, 1)
    least = expansion.layers + remaining * each
    if least <= MAX_LAYERS:
        return
    here = doc.loc((*node.path, "repeat") if node.repeat is not None else (*node.path, "block"))
    if each > MAX_LAYERS and node.op in expansion.crossing:
        where, message = expansion.crossing[node.op]
        raise SpecError(
            "E104", message, doc.loc(where), notes=[f"{here}: block `{node.op}` is used here"], hint=_BUDGET_HINT
        )
    message = (
        f"with this use of block `{node.op}`, block uses would expand to at least {least:,} layers, more than"
        f" the limit of {MAX_LAYERS:,} (all block instances together)"
    )
    if remaining == 0:  # after the last instance: the instances held more layers than `minimum` said
        message = (
            f"with the instances of block `{node.op}`, block uses expand to {expansion.layers:,} layers, more than"
            f" the limit of {MAX_LAYERS:,} (all block instances together)"
        )
    raise SpecError("E104", message, here, hint=_BUDGET_HINT)


_BUDGET_HINT = "a model this large is most likely a mistake in a `repeat`; specc refuses to expand it"


def _block_args(node: Node, template: Graph, scope: dict[str, Any], doc: Document) -> dict[str, Any]:
    assert template.block_params is not None
    args: dict[str, Any] = {}
    for key, decl in template.block_params.items():
        path: JsonPath = (*node.path, "args", key)
        if key in node.args:
            value = evaluate(node.args[key], scope, path, doc)
        elif not decl.required:
            value = decl.default
        else:
            raise SpecError(
                "E103", f"block `{node.op}` needs a value for parameter `{key}`", doc.loc((*node.path, "block"))
            )
        ok = {
            "int": _is_int(value),
            "bool": isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        }[decl.type]
        if not ok:
            raise SpecError(
                "E102", f"parameter `{key}` of block `{node.op}` is {decl.type}, got {render(value)}", doc.loc(path)
            )
        args[key] = value
    return args


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def dim_names(rank: int) -> tuple[str, ...]:
    """Names of a block input's sizes, as they appear in block classes: (in_channels, in_height, in_width)..."""
    return {
        1: ("in_features",),
        2: ("in_channels", "in_features"),
        3: ("in_channels", "in_height", "in_width"),
        4: ("in_channels", "in_depth", "in_height", "in_width"),
    }.get(rank, tuple(f"in_size{i}" for i in range(rank)))


def block_dim_names(block: Graph, rank: int) -> tuple[str, ...]:
    """Names of a block's input sizes: as its `dims:` says, else in_channels, ..., in_features."""
    return block.input_dims if block.input_dims is not None else dim_names(rank)


def _seed(t: TensorType, names: tuple[str, ...]) -> TensorType:
    """The block input's type with every size named, so the block's class can be written generically."""
    return t.with_shape(tuple(Dim.named(int(d), n) for d, n in zip(t.shape, names, strict=True)))


def _rebase(
    out: TensorType, args: dict[str, Any], caller_input: TensorType, var_values: dict[str, Any], names: tuple[str, ...]
) -> TensorType:
    """A block's output type in the caller's terms: its symbolic sizes re-evaluated over the caller's values
    (which are plain numbers at the top level, or the enclosing block's own symbolic sizes)."""
    mapping: dict[str, Any] = {**args, **dict(zip(names, caller_input.shape, strict=True))}
    for name, value in var_values.items():  # vars, in order, over the arguments and input sizes
        mapping[name] = parse(value.source, max_chars=100_000).evaluate(mapping) if isinstance(value, Dim) else value
    shape = []
    for d in out.shape:
        value = parse(d.source, max_chars=100_000).evaluate(mapping) if isinstance(d, Dim) else int(d)
        assert int(value) == int(d), f"rebasing {d!r} gave {value!r}"
        shape.append(value)
    return out.with_shape(tuple(shape))


def parameter_dtype(inputs: Iterable[TensorType]) -> str:
    """The dtype of the model's floating parameters: its floating inputs' dtype when they all have one
    (build_model converts the model to it), else float32."""
    floats = {t.dtype for t in inputs if t.dtype in FLOAT_DTYPES}
    return floats.pop() if len(floats) == 1 else "float32"


def input_names(inputs: list[TensorType]) -> dict[str, Any]:
    """Sizes of the (first) input that expressions may use: in_channels, in_features, in_rank."""
    if not inputs:
        return {}
    x = inputs[0]
    names: dict[str, Any] = {"in_rank": x.rank}
    if x.rank:
        names["in_channels"] = x.shape[0]
        names["in_features"] = x.shape[-1]
    return names


def evaluate(value: Any, env: dict[str, Any], path: JsonPath, doc: Document) -> Any:
    """A spec value with its expressions evaluated. Over symbolic sizes the result is a `Dim` whose
    source is the expression itself, so block classes print `planes * 4`, not its value."""
    if isinstance(value, list):
        return [evaluate(v, env, (*path, i), doc) for i, v in enumerate(value)]
    if not isinstance(value, Expr):
        return value
    try:
        result = value.evaluate(env)
    except ExprError as exc:
        if exc.kind == "name":
            raise SpecError(
                "E302",
                f"{exc.message} in `{value.source}`",
                doc.loc(path),
                hint=did_you_mean(exc.name or "", sorted(env)),
            ) from None
        raise SpecError("E303", f"cannot evaluate `{value.source}`: {exc.message}", doc.loc(path)) from None
    symbolic = any(isinstance(env.get(n), Dim) for n in value.names)
    # `+ - * // %` keep Dims symbolic by themselves; min/max/`if` pick a value, so record the whole expression.
    choice = any(isinstance(n, (ast.Call, ast.IfExp)) for n in ast.walk(value.tree))
    if symbolic and _is_int(result) and (choice or not isinstance(result, Dim)):
        source = substitute(value.tree, {n: env[n] for n in value.names if n in env})
        return Dim(int(result), ((f"({source})", 1),), 0)
    return result
