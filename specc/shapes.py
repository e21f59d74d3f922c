"""Stage 4: shape inference. Evaluates parameter expressions, validates each op's parameters and
runs its shape rule; fills in every inferred size, the output shape, parameter count and MACs."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from specc.errors import SpecError, did_you_mean
from specc.expr import Expr, ExprError
from specc.ir import Graph, Node
from specc.load import Document
from specc.ops import ShapeError, TensorType, get_op


def infer(graph: Graph, doc: Document) -> Graph:
    """A copy of `graph` with every node's parameters, output type, parameter count and MACs."""
    graph = copy.deepcopy(graph)
    values: dict[str, TensorType] = dict(graph.inputs)
    for node in graph.nodes:
        inputs = [values[ref] for ref in node.inputs]
        _infer_node(node, inputs, graph.constants, doc)
        assert node.out is not None
        values[node.name] = node.out
    return graph


def _infer_node(node: Node, inputs: list[TensorType], constants: dict[str, Any], doc: Document) -> None:
    node.inputs_types = tuple(inputs)
    if node.kind == "sequential":
        current = inputs
        for child in node.children:
            _infer_node(child, current, constants, doc)
            assert child.out is not None
            current = [child.out]
        node.out = current[0]
        node.param_count = sum(c.param_count for c in node.children)
        node.macs = sum(c.macs for c in node.children)
        return
    op = get_op(node.op)
    assert op is not None
    if len(inputs) < op.min_inputs or (op.max_inputs is not None and len(inputs) > op.max_inputs):
        wanted = str(op.min_inputs) if op.min_inputs == op.max_inputs else f"at least {op.min_inputs}"
        raise SpecError(
            "E206", f"{node.op} takes {wanted} input(s), but `{node.name}` has {len(inputs)}", doc.loc(node.path)
        )
    env = {**constants, **_input_names(inputs)}
    values = {key: _evaluate(value, env, (*node.path, key), doc) for key, value in node.args.items()}
    try:
        node.params = op.Params.model_validate(values)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        key = next((p for p in error["loc"] if isinstance(p, str) and p in values), None)
        where = (*node.path, key) if key else node.path
        raise SpecError(
            "E104",
            f"`{key or node.op}` of {node.op} `{node.name}` evaluates to {error.get('input')!r}: {error['msg']}",
            doc.loc(where),
        ) from None
    try:
        result = op.infer(node.params, inputs)
    except ShapeError as exc:
        where = (*node.path, exc.field) if exc.field and exc.field in node.args else node.path
        raise SpecError(exc.code, f"{node.op} `{node.name}`: {exc.message}", doc.loc(where), hint=exc.hint) from None
    node.out, node.param_count, node.macs = result.out, result.params, result.macs


def _input_names(inputs: list[TensorType]) -> dict[str, int]:
    """Sizes of the (first) input that expressions may use: in_channels, in_features, in_rank."""
    if not inputs:
        return {}
    x = inputs[0]
    names = {"in_rank": x.rank}
    if x.rank:
        names["in_channels"] = x.shape[0]
        names["in_features"] = x.shape[-1]
    return names


def _evaluate(value: Any, env: dict[str, Any], path: tuple[Any, ...], doc: Document) -> Any:
    if isinstance(value, list):
        return [_evaluate(v, env, (*path, i), doc) for i, v in enumerate(value)]
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
    return result
