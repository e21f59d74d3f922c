"""Differential and property tests: random valid specs agree with torch; random invalid ones are refused.

Hypothesis builds specs from the op registry: every registered op (parameters drawn from its own
parameter model, a few ops with hints so that their sizes fit), sequentials, blocks with parameters,
vars, dims, `when`, `repeat` and `names`, merges (`in`), parameters, several inputs, masks, expressions
and `output`. Sizes are small (batch 2) so that a real CPU run is cheap. For each spec:

- specc accepts it, the generated files compile and are black-formatted (a second black pass changes
  nothing);
- `specc.verify` runs the model on the meta device and on the CPU and finds the shape and dtype specc
  inferred for every node (every module output and every assignment in every generated `forward`);
- a random corruption of it (a wrong type, a zero, a huge number, a missing or unknown key, a dangling
  reference, ...) is either refused with located diagnostics before any code is generated, or, when the
  corruption happens to give another valid spec, that spec runs in torch and agrees with specc too.

Budgets: the `ci` profile (tests/conftest.py) runs >= 500 examples in all; `--hypothesis-profile=nightly`
multiplies them by 20.
"""

from __future__ import annotations

import io
import json
import math
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
import yaml
from hypothesis import find, given, note, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from specc.compiler import analyze, generate
from specc.errors import SpecErrors
from specc.format import format_python
from specc.ops import ShapeError, TensorType, all_ops, get_op
from specc.verify import EXIT_MISMATCH, EXIT_OK, EXIT_SPEC_ERROR, _model_source, verify, verify_command
from tests.tally import TALLY


def scaled(examples: int) -> int:
    """`examples` under the ci profile (100 examples per test by default), proportionally more under nightly."""
    return max(1, examples * settings.default.max_examples // 100)


# Sizes stay small: every value has at most MAX_NUMEL elements per sample and MAX_SIZE per dim.
MAX_NUMEL = 2048
MAX_SIZE = 48
MAX_LAYERS = 7
# Ops drawn rarely: they are slow to run (a whole transformer) or need an input they rarely get.
RARE = {"transformer", "transformer_decoder", "transformer_encoder"}
# Floating input dtypes drawn, float32 most often: a model of another dtype builds its parameters in it.
INPUT_DTYPES = ["float32", "float32", "float32", "float64", "float16", "bfloat16"]
# How a block's `when` flag is typed, the argument each instance passes (`i` is its index) and the test.
FLAGS = [
    ({"type": "int", "default": 0}, "i % 2", "flag > 0"),
    ({"type": "bool", "default": False}, "i % 2 == 1", "flag"),
    ({"type": "float", "default": 0.0}, "i * 0.5", "flag > 0.25"),
]
# Which ops the generator produced (informational: test_the_generator_reaches_every_op checks reachability).
DRAWN: set[str] = set()


# ------------------------------------------------------------------------------------------- parameters


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        for key in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            if getattr(item, key, None) is not None:
                value = getattr(item, key)
                found[key] = min(found[key], value) if key in ("le", "lt") and key in found else value
        if isinstance(item, annotated_types.Len):
            found["min_length"], found["max_length"] = item.min_length, item.max_length
    return found


def _strategy(annotation: Any, metadata: list[Any] = ()) -> st.SearchStrategy[Any]:
    """Small values of a parameter's type (ints 1..8 for sizes, -4..4 for dims, a few floats, ...)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        flat = [m for e in extra for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        return _strategy(base, [*metadata, *flat])
    if origin in (Union, type(int | None)):
        members = [_strategy(a, metadata if a is not type(None) else []) for a in get_args(annotation)]
        return st.one_of(members)
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    bounds = _bounds(list(metadata))
    if origin is list:
        (item,) = get_args(annotation)
        low = bounds.get("min_length", 0)
        high = min(bounds.get("max_length") or low + 3, low + 3)
        caps = [m for m in metadata if isinstance(m, annotated_types.Le)]  # a window cap applies to each item
        return st.lists(_strategy(item, caps), min_size=low, max_size=high)
    if annotation is type(None):
        return st.none()
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        low = bounds.get("ge", bounds["gt"] + 1 if "gt" in bounds else -4)
        high = min(bounds.get("le", 8), 8 if low >= 0 else 4)
        return st.integers(low, max(low, high))
    if annotation is float:
        choices = [0.0, 1e-5, 0.1, 0.5, 1.0, 2.0]
        ok = [
            c
            for c in choices
            if c >= bounds.get("ge", -math.inf)
            and c > bounds.get("gt", -math.inf)
            and c <= bounds.get("le", math.inf)
            and c < bounds.get("lt", math.inf)
        ]
        return st.sampled_from(ok or [1.0])
    if annotation is str:
        return st.just("x")
    raise NotImplementedError(f"no strategy for {annotation!r}")


# Window sizes: small, so that kernels fit the small inputs more often than not.
WINDOW_FIELDS = {"kernel_size": 3, "dilation": 2, "stride": 2, "padding": 1, "output_padding": 1}


def _field_strategy(name: str, info: Any) -> st.SearchStrategy[Any]:
    metadata = list(info.metadata)
    if name in WINDOW_FIELDS:
        metadata.append(annotated_types.Le(WINDOW_FIELDS[name]))
    return _strategy(info.annotation, metadata)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _factor(draw: st.DrawFn, n: int, parts: int) -> list[int]:
    """`n` as a product of `parts` positive sizes (in a random order)."""
    sizes = []
    for _ in range(parts - 1):
        d = draw(st.sampled_from(_divisors(n)))
        sizes.append(d)
        n //= d
    return [*sizes, n]


def _hints(draw: st.DrawFn, op: str, x: TensorType) -> dict[str, Any]:
    """Values that fit the input, for parameters that random values rarely fit (shapes, groups, heads)."""
    r = x.rank
    if op in ("reshape", "view") and r:
        shape = _factor(draw, x.numel, draw(st.integers(1, 3)))
        if draw(st.booleans()):
            shape[draw(st.integers(0, len(shape) - 1))] = -1
        return {"shape": shape}
    if op == "unflatten" and r:
        dim = draw(st.integers(1, r))
        sizes = _factor(draw, x.shape[dim - 1], draw(st.integers(1, 3)))
        if draw(st.booleans()):
            sizes[0] = -1
        return {"dim": dim - (r + 1) * draw(st.sampled_from([0, 1])), "sizes": sizes}
    if op == "permute" and r:
        rest = draw(st.permutations(list(range(1, r + 1))))
        return {"dims": [0, *rest]}
    if op == "expand" and r:
        return {"sizes": [draw(st.sampled_from([-1, 1, 2, 3])) if d == 1 else -1 for d in x.shape]}
    if op in ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d") and r:
        groups = draw(st.sampled_from(_divisors(x.shape[0])))
        return {"groups": groups, "out_channels": groups * draw(st.integers(1, 3))}
    if op == "group_norm" and r:
        # Groups of one value fail in torch at batch 1: tests/hostile/group_norm_single_value.yaml (xfail).
        spatial = math.prod(x.shape[1:])
        groups = [g for g in _divisors(x.shape[0]) if x.shape[0] // g * spatial > 1]
        return {"num_groups": draw(st.sampled_from(groups)) if groups else 0}
    if op == "layer_norm" and r:
        k = draw(st.integers(0, min(r, 2)))
        return {"normalized_shape": list(x.shape[r - k :]) if k else None}
    if op == "multihead_attention" and r:
        return {"num_heads": draw(st.sampled_from(_divisors(x.shape[-1])))}
    if op.startswith("transformer") and r:
        hints = {"nhead": draw(st.sampled_from(_divisors(x.shape[-1]))), "dim_feedforward": draw(st.integers(1, 8))}
        for key in ("num_layers", "num_encoder_layers", "num_decoder_layers"):
            hints[key] = draw(st.integers(1, 2))
        return hints
    if op in ("transpose", "select", "slice", "chunk", "split", "softmax", "log_softmax", "concat", "flatten") and r:
        dims = [d for d in range(-r, r + 1) if d]  # the batch (0) stays, except where an op allows it
        keys = {"transpose": ("dim0", "dim1"), "flatten": ("start_dim", "end_dim")}.get(op, ("dim",))
        return {key: draw(st.sampled_from(dims)) for key in keys}
    if op == "embedding":
        return {"num_embeddings": draw(st.integers(1, 12)), "embedding_dim": draw(st.integers(1, 8))}
    if op == "parameter":
        return {"shape": draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))}
    return {}


def _layout(op: Any, inputs: list[TensorType], out: TensorType) -> TensorType:
    """As specc.shapes: computed from broadcast tensors alone, a value is one too; element-wise ops keep a
    non-contiguous layout."""
    if op.kind != "parameter" and inputs and all(t.broadcast for t in inputs) and not out.broadcast:
        out = replace(out, broadcast=True)
    if op.keeps_layout and not all(t.contiguous for t in inputs) and out.contiguous:
        out = replace(out, contiguous=False)
    return out


def _small(t: TensorType) -> bool:
    return t.rank <= 5 and t.numel <= MAX_NUMEL and all(1 <= int(d) <= MAX_SIZE for d in t.shape)


def infer(op_name: str, params: dict[str, Any], inputs: list[TensorType]) -> TensorType | None:
    """The op's output for `inputs`, or None if specc's op refuses the parameters or inputs."""
    op = get_op(op_name)
    assert op is not None
    try:
        p = op.Params.model_validate(params)
        given_inputs = len(inputs) - op.refs(p)
        if given_inputs < op.min_inputs or (op.max_inputs is not None and given_inputs > op.max_inputs):
            return None
        out = op.infer(p, inputs).out
    except (ValidationError, ShapeError):
        return None
    return _layout(op, inputs[:given_inputs], out)


# ------------------------------------------------------------------------------------------------ specs


@dataclass
class Value:
    name: str
    type: TensorType


@dataclass
class Builder:
    """Draws a spec layer by layer, tracking each value's type with specc's own op rules."""

    draw: st.DrawFn
    values: list[Value] = field(default_factory=list)  # inputs and named layers: what `in` may name
    layers: list[Any] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    blocks: dict[str, Any] = field(default_factory=dict)
    current: TensorType | None = None
    count: int = 0

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    # -- one op ----------------------------------------------------------------------------------------

    def op_layer(
        self,
        x: TensorType,
        chainable: bool = False,
        others: list[Value] | None = None,
        keep: bool = False,
    ) -> tuple[dict[str, Any], TensorType] | None:
        """A layer of some op that accepts `x` (plus, for several-input ops, values from `others`); with
        `keep`, one whose output has the type of `x`."""
        ops = all_ops()
        names = sorted(n for n in ops if not (chainable and ops[n].kind != "module"))
        weights = [2 if n in RARE else 6 for n in names]
        choice = self.draw(st.sampled_from([n for n, w in zip(names, weights, strict=True) for _ in range(w)]))
        op = ops[choice]
        for _ in range(6):
            params = self.draw_params(choice, x)
            inputs, refs = self.draw_inputs(choice, x, others or [])
            if choice == "parameter":
                inputs, refs = [], []
            masks = self.draw_masks(choice, params, others or [])
            types = [v.type for v in inputs] + [m.type for _, m in masks]
            out = infer(choice, {**params, **{k: m.name for k, m in masks}}, types)
            if out is None or not _small(out) or (keep and out != x):
                continue
            if chainable and op.chainable(op.Params.model_validate({**params, **dict(masks)})):
                continue
            DRAWN.add(choice)
            layer = {"op": choice, **params, **{k: m.name for k, m in masks}}
            if refs:
                layer["in"] = refs if len(refs) > 1 else refs[0]
            return layer, out
        return None

    def draw_params(self, op_name: str, x: TensorType) -> dict[str, Any]:
        op = get_op(op_name)
        assert op is not None
        hints = _hints(self.draw, op_name, x)
        params: dict[str, Any] = {}
        for name, info in op.Params.model_fields.items():
            if name in op.ref_params:
                continue
            if name in hints:
                if hints[name] is not None:
                    params[name] = hints[name]
                continue
            wanted = info.is_required() or self.draw(st.integers(0, 9)) < (1 if name in op.inferred_params else 3)
            if wanted:
                params[name] = self.draw(_field_strategy(name, info))
        return params

    def draw_inputs(self, op_name: str, x: TensorType, others: list[Value]) -> tuple[list[Value], list[str]]:
        """The inputs of an op that takes several: named values (the current one first, if it has a name) of
        the same shape as the first, or any. One input is the current value, left implicit."""
        op = get_op(op_name)
        assert op is not None
        high = min(3 if op.max_inputs is None else op.max_inputs, 3)
        if high <= 1 or not others:
            return [Value("", x)], []
        n = self.draw(st.integers(max(op.min_inputs, 1), high))
        if n == 1:
            return [Value("", x)], []
        first = others[-1] if others[-1].type == x else self.draw(st.sampled_from(others))
        same = [v for v in others if v.type.shape == first.type.shape and v.type.dtype == first.type.dtype]
        pool = same if same and self.draw(st.integers(0, 3)) else others
        picked = [first] + [self.draw(st.sampled_from(pool)) for _ in range(n - 1)]
        return picked, [v.name for v in picked]

    def draw_masks(self, op_name: str, params: dict[str, Any], others: list[Value]) -> list[tuple[str, Value]]:
        op = get_op(op_name)
        assert op is not None
        masks = [v for v in others if v.type.dtype == "bool"]
        if not masks or not op.ref_params:
            return []
        chosen = []
        for key in op.ref_params:
            if key == "attn_mask":
                continue  # a model input as attn_mask: tests/hostile/sdpa_attn_mask_input.yaml (xfail)
            if self.draw(st.integers(0, 2)) == 0:
                chosen.append((key, self.draw(st.sampled_from(masks))))
        return chosen

    # -- layers ----------------------------------------------------------------------------------------

    def named(self, layer: dict[str, Any], out: TensorType, always: bool = False) -> dict[str, Any]:
        if always or self.draw(st.integers(0, 3)):
            layer["name"] = self.fresh("n")
            self.values.append(Value(layer["name"], out))
        return layer

    def add_op(self) -> bool:
        assert self.current is not None
        found = self.op_layer(self.current, others=self.values)
        if found is None:
            return False
        layer, out = found
        if "in" not in layer and layer["op"] != "parameter" and not self.layers:
            layer["in"] = self.values[0].name
        single = "in" not in layer or isinstance(layer["in"], str)
        if (
            single
            and out == self.current
            and get_op(layer["op"]).kind != "parameter"
            and not self.draw(st.integers(0, 5))
        ):
            # Present or not, the value has the same type: a condition over the spec's params.
            name = f"k{len(self.params)}"
            self.params[name] = self.draw(st.integers(0, 2))
            layer["when"] = self.draw(st.sampled_from([True, False, f"{name} > 0", f"{name} == 1 or in_rank > 3"]))
        self.layers.append(self.named(self.expressions(layer), out, always=layer["op"] == "parameter"))
        self.current = out
        return True

    def add_sequential(self) -> bool:
        assert self.current is not None
        children, x = [], self.current
        for _ in range(self.draw(st.integers(1, 3))):
            found = self.op_layer(x, chainable=True)
            if found is None:
                break
            child, x = found
            if self.draw(st.integers(0, 3)) == 0:
                child["name"] = self.fresh("c")
            children.append(child)
        if not children:
            return False
        layer: dict[str, Any] = {"op": "sequential", "layers": children}
        if not self.layers:
            layer["in"] = self.values[0].name
        self.layers.append(self.named(layer, x))
        self.current = x
        return True

    def add_residual(self) -> bool:
        """`in: [a, b]` merges: a branch of shape-keeping ops from a named value, then add/mul/concat."""
        assert self.current is not None
        start = self.values[-1]
        x, branch = start.type, []
        for _ in range(self.draw(st.integers(1, 2))):
            found = self.op_layer(x, chainable=True)
            if found is None:
                return False
            child, y = found
            if y != x:
                return False
            branch.append(child)
        first = {**branch[0], "in": start.name, "name": self.fresh("b")}
        self.layers.append(first)
        for child in branch[1:]:
            self.layers.append(child)
        end = self.fresh("e")
        self.layers[-1]["name"] = self.layers[-1].get("name") if len(branch) == 1 else end
        tail = self.layers[-1]["name"]
        merge = self.draw(st.sampled_from(["add", "mul", "concat"]))
        params: dict[str, Any] = {}
        if merge == "concat" and x.rank:
            params["dim"] = self.draw(st.integers(1, x.rank))
        out = infer(merge, params, [x, x])
        if out is None or not _small(out):
            return False
        DRAWN.add(merge)
        self.layers.append(self.named({"op": merge, "in": [start.name, tail], **params}, out))
        self.current = out
        return True

    def add_block(self) -> bool:
        """A block class: a chain of ops whose sizes are block parameters, vars and dims, maybe repeated,
        maybe with a `when` layer present in some instances only."""
        assert self.current is not None
        x = self.current
        body, y, args, decls = [], x, {}, {}
        keep = self.draw(st.booleans())  # a body that keeps the shape can be repeated
        for _ in range(self.draw(st.integers(1, 3))):
            found = self.op_layer(y, chainable=True, keep=keep)
            if found is None:
                break
            layer, y = found
            body.append(layer)
        if not body:
            return False
        # A size as a block parameter (and maybe through a var): `out_features: p0` with `args: {p0: 6}`.
        ints = [(i, k) for i, layer in enumerate(body) for k, v in layer.items() if _plain_int(v) and v >= 1]
        block_vars: dict[str, Any] = {}
        if ints:
            i, key = self.draw(st.sampled_from(ints))
            value = body[i][key]
            decls["p0"] = "int" if self.draw(st.booleans()) else {"type": "int", "default": value}
            if not isinstance(decls["p0"], dict) or self.draw(st.booleans()):
                args["p0"] = value
            if self.draw(st.booleans()):
                block_vars["w0"] = "p0 * 2 // 2"
                body[i][key] = "w0"
            else:
                body[i][key] = "p0"
        dims = None
        if x.rank and self.draw(st.integers(0, 3)) == 0:
            dims = [f"d{k}" for k in range(x.rank)]
        repeat = None
        if y == x and self.draw(st.booleans()):
            repeat = self.draw(st.integers(2, 3))
            if self.draw(st.booleans()):  # present in some instances only: one class takes every instance
                extra = self.op_layer(y, chainable=True, keep=True)
                if extra is not None:
                    decls["flag"], args["flag"], when = self.draw(st.sampled_from(FLAGS))
                    body.append({**extra[0], "when": when})
        keeps = dims and y == x and x.dtype.startswith("float")
        if keeps and infer("linear", {"out_features": int(x.shape[-1])}, [y]) == y:
            # A named dim in an expression: the last size kept by a linear layer.
            body.append({"op": "linear", "out_features": f"d{x.rank - 1}"})
            DRAWN.add("linear")
        name = f"B{len(self.blocks)}"
        block: dict[str, Any] = {"layers": body}
        if decls:
            block["params"] = decls
        if block_vars:
            block["vars"] = block_vars
        if dims:
            block["dims"] = dims
        self.blocks[name] = block
        use: dict[str, Any] = {"block": name}
        if args:
            use["args"] = args
        if repeat:
            use["repeat"] = repeat
            if self.draw(st.booleans()):
                use["names"] = "layer_{i}"
        if not self.layers:
            use["in"] = self.values[0].name
        self.layers.append(self.named(use, y))
        self.current = y
        return True

    def expressions(self, layer: dict[str, Any]) -> dict[str, Any]:
        """Sometimes writes an integer parameter as an expression over `params:` or the input's sizes."""
        ints = [k for k, v in layer.items() if _plain_int(v) and v >= 1 and k not in ("op", "in")]
        if not ints or self.draw(st.integers(0, 3)):
            return layer
        key = self.draw(st.sampled_from(ints))
        value = layer[key]
        name = f"k{len(self.params)}"
        form = self.draw(st.integers(0, 3))
        if form == 0:
            self.params[name] = value
            layer[key] = name
        elif form == 1 and value % 2 == 0:
            self.params[name] = value // 2
            layer[key] = f"{name} * 2"
        elif form == 2:
            self.params[name] = value
            layer[key] = f"max({name}, 1) if {name} > 0 else 1"
        else:
            layer[key] = f"{value} + 0 * in_rank"
        return layer


def _plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A random valid spec (as plain data)."""
    builder = Builder(draw)
    kind = draw(
        st.sampled_from(["image"] * 3 + ["sequence"] * 3 + ["vector"] * 2 + ["volume"] * 2 + ["tokens", "masked"])
    )
    inputs: dict[str, Any] = {}
    if kind == "image":
        shape = [draw(st.integers(1, 4)), draw(st.integers(1, 10)), draw(st.integers(1, 10))]
    elif kind == "volume":
        shape = [draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5))]
    elif kind == "vector":
        shape = [draw(st.integers(1, 16))]
    else:
        shape = [draw(st.integers(1, 6)), draw(st.sampled_from([2, 4, 6, 8]))]
    dtype = draw(st.sampled_from(INPUT_DTYPES))
    main = "seq" if kind == "masked" else "x"  # with several inputs, `x` is not a valid input name
    if kind == "tokens":
        inputs[main] = {"shape": shape[:1], "dtype": "int64"}
        builder.values.append(Value(main, TensorType((shape[0],), "int64")))
    else:
        inputs[main] = {"shape": shape, "dtype": dtype} if dtype != "float32" else {"shape": shape}
        builder.values.append(Value(main, TensorType(tuple(shape), dtype)))
    if kind == "masked":
        inputs["mask"] = {"shape": shape[:1], "dtype": "bool"}
        builder.values.append(Value("mask", TensorType((shape[0],), "bool")))
    builder.current = builder.values[0].type
    if kind == "tokens":
        found = None
        for _ in range(5):
            params = _hints(draw, "embedding", builder.current)
            out = infer("embedding", params, [builder.current])
            if out is not None:
                found = ({"op": "embedding", "in": "x", **params}, out)
                break
        if found is None:
            found = ({"op": "embedding", "in": "x", "num_embeddings": 4, "embedding_dim": 4}, None)
            found = (found[0], infer("embedding", {"num_embeddings": 4, "embedding_dim": 4}, [builder.current]))
        layer, out = found
        assert out is not None
        DRAWN.add("embedding")
        builder.layers.append(builder.named(layer, out, always=True))
        builder.current = out
    steps = draw(st.integers(1, MAX_LAYERS))
    for _ in range(steps):
        action = draw(st.sampled_from(["op"] * 6 + ["sequential", "residual", "block", "block"]))
        added = {
            "op": builder.add_op,
            "sequential": builder.add_sequential,
            "residual": builder.add_residual,
            "block": builder.add_block,
        }[action]()
        if not added:
            builder.add_op()
    if not builder.layers:
        builder.layers.append({"op": "identity", "in": builder.values[0].name})
        DRAWN.add("identity")
    if kind == "tokens" and builder.current is not None:
        embedding = builder.layers[0]
        t = builder.current
        tied = {"op": "linear", "out_features": embedding["num_embeddings"], "tie": embedding["name"]}
        fits = t.rank and t.dtype == "float32" and int(t.shape[-1]) == embedding["embedding_dim"]
        if fits and infer("linear", {"out_features": 1}, [t]) is not None and draw(st.booleans()):
            builder.layers.append(tied)
    spec: dict[str, Any] = {"name": draw(st.sampled_from(["Net", "Model", "RandomNet"]))}
    if list(inputs) == ["x"]:
        spec["input"] = inputs["x"]
        for layer in builder.layers:
            if layer.get("in") == "x" and layer is builder.layers[0] and draw(st.booleans()):
                del layer["in"]
    else:
        spec["inputs"] = inputs
    if builder.params:
        spec["params"] = builder.params
    if builder.blocks:
        spec["blocks"] = builder.blocks
    spec["layers"] = builder.layers
    named = [layer["name"] for layer in builder.layers if "name" in layer and layer.get("op") != "parameter"]
    if named and draw(st.integers(0, 5)) == 0:
        spec["output"] = draw(st.sampled_from(named))
    return spec


def write_spec(spec: dict[str, Any], directory: Path, form: str) -> Path:
    if form == "json":
        path = directory / "spec.json"
        path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    else:
        path = directory / "spec.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None), encoding="utf-8")
    return path


def check_generated(path: Path) -> None:
    """Every generated file compiles and is black-formatted; verify checks the model.py that build writes."""
    compiled = analyze(path)
    files = generate(compiled, "model")
    for name, text in files.items():
        if name.endswith(".py"):
            compile(text, name, "exec")
            assert format_python(text) == text, f"{name} is not black-formatted"
    assert _model_source(compiled) == files["model.py"]


# ------------------------------------------------------------------------------------------------ tests


def _without_inplace(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _without_inplace(value) for key, value in node.items() if key != "inplace"}
    if isinstance(node, list):
        return [_without_inplace(item) for item in node]
    return node


@settings(max_examples=scaled(400))
@given(spec=specs(), form=st.sampled_from(["yaml", "json"]))
def test_random_specs_agree_with_torch(spec: dict[str, Any], form: str, tmp_path_factory: Any) -> None:
    directory = tmp_path_factory.mktemp("spec")
    path = write_spec(spec, directory, form)
    note(path.read_text(encoding="utf-8"))
    try:
        check_generated(path)
    except SpecErrors as exc:  # the generator only builds what specc's op rules accept...
        if not all("cannot work in place" in error.message for error in exc.errors):
            pytest.fail(f"specc refused a spec its own op rules accept:\n{exc.format()}")
        # ...one layer at a time: whether an in-place op may overwrite its input depends on the whole graph
        # (tests/test_inplace.py checks those refusals against torch). Without `inplace`, it must build.
        TALLY["properties: random specs refused for an in-place op (then built without)"] += 1
        path = write_spec(_without_inplace(spec), directory, form)
        check_generated(path)
    report = verify(path)
    TALLY["properties: random valid specs built and run in torch"] += 1
    TALLY["properties: inferred shapes and dtypes compared with torch's"] += report.checked
    TALLY["properties: shape or dtype mismatches with torch"] += 0 if report.ok else 1
    assert report.ok, report.format()
    assert "cpu" in report.runs or report.skipped, report.format()


MUTANTS: list[Any] = [0, -1, -(2**31), 2**31, 10**12, 2**63, True, False, 1.5, -0.5, "7", None, "", [], {}, [0], "nope"]
MUTANTS += ["1 +", "__import__('os')", "in_channels * 0", "in_features // 0", "2 ** 99", "x", "max(1)", 1e308]


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one random corruption: a value replaced, a key removed or added, a list changed."""
    spec = draw(specs())
    sites: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                sites.append((node, key))
                walk(value)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                sites.append((node, index))
                walk(value)

    walk(spec)
    container, key = draw(st.sampled_from(sites))
    action = draw(st.sampled_from(["value", "value", "value", "delete", "add", "swap"]))
    if action == "value":
        container[key] = draw(st.sampled_from(MUTANTS))
    elif action == "delete":
        del container[key]
    elif action == "add" and isinstance(container, dict):
        container[draw(st.sampled_from(["bogus", "strides", "in", "when", "name", "repeat"]))] = draw(
            st.sampled_from(MUTANTS)
        )
    elif action == "swap" and isinstance(container, list) and len(container) > 1:
        other = draw(st.integers(0, len(container) - 1))
        container[key], container[other] = container[other], container[key]
    else:
        container[key] = draw(st.sampled_from(MUTANTS))
    return spec


@settings(max_examples=scaled(300))
@given(spec=mutated(), form=st.sampled_from(["yaml", "json"]))
def test_corrupted_specs_are_refused_before_codegen(spec: dict[str, Any], form: str, tmp_path_factory: Any) -> None:
    directory = tmp_path_factory.mktemp("mutant")
    path = write_spec(spec, directory, form)
    note(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").count("\n") + 1
    try:
        analyze(path)
    except SpecErrors as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.loc is not None and error.loc.file == str(path), error.format()
            assert 1 <= error.loc.line <= lines, error.format()
        TALLY["properties: corrupted specs refused with a located diagnostic"] += 1
        return
    # Still a valid spec: then it must build, and torch must agree with it.
    check_generated(path)
    report = verify(path)
    TALLY["properties: corrupted specs still valid, built and run in torch"] += 1
    TALLY["properties: shape or dtype mismatches with torch"] += 0 if report.ok else 1
    assert report.ok, report.format()


@st.composite
def one_layer(draw: st.DrawFn, name: str) -> dict[str, Any] | None:
    """A layer of op `name` on a random small input, as the spec generator draws it; None if it does not fit."""
    op = get_op(name)
    assert op is not None
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(rank))
    x = TensorType(shape, "int64" if name == "embedding" else "float32")
    params = Builder(draw).draw_params(name, x)
    inputs = [] if op.kind == "parameter" else [x] * max(op.min_inputs, 1)
    return params if infer(name, params, inputs) is not None else None


@pytest.mark.parametrize("name", sorted(all_ops()))
def test_the_generator_reaches_every_op(name: str) -> None:
    """Every registered op (including ones added later) can come out of the spec generator's draws."""
    find(one_layer(name), lambda layer: layer is not None, settings=settings(max_examples=1000, database=None))


# ------------------------------------------------------------------------------------ specc verify itself


def test_verify_reports_a_wrong_inferred_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deliberately wrong shape rule (transpose forgetting to swap) is caught, node by node."""
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "name: T\ninput: {shape: [3, 5]}\nlayers:\n  - {op: transpose, dim0: 1, dim1: 2, name: t}\n"
        "  - {op: relu, name: r}\n",
        encoding="utf-8",
    )
    assert verify(spec).ok
    op = type(get_op("transpose"))
    original = op.infer

    def wrong(self: Any, p: Any, inputs: list[TensorType]) -> Any:
        result = original(self, p, inputs)
        return replace(result, out=inputs[0])

    monkeypatch.setattr(op, "infer", wrong)
    report = verify(spec)
    assert not report.ok
    assert {(m.run, m.node) for m in report.mismatches} >= {("meta", "t"), ("cpu", "t"), ("meta", "r"), ("cpu", "r")}
    assert "specc inferred (2, 3, 5) float32, torch gives (2, 5, 3) float32" in report.format()


def test_verify_command_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: G\ninput: {shape: [4]}\nlayers:\n  - {op: linear, out_features: 2}\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: G\ninput: {shape: [4]}\nlayers:\n  - {op: linear, out_features: 0}\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert verify_command(good, out, err) == EXIT_OK
    assert "all shapes agree" in out.getvalue()
    assert verify_command(bad, out, err) == EXIT_SPEC_ERROR
    assert "bad.yaml:4:32: error[E104]" in err.getvalue()
    op = type(get_op("linear"))
    original = op.infer
    monkeypatch.setattr(op, "infer", lambda self, p, inputs: replace(original(self, p, inputs), out=TensorType((3,))))
    err = io.StringIO()
    assert verify_command(good, io.StringIO(), err) == EXIT_MISMATCH
    assert "torch gives (2, 2) float32" in err.getvalue()


def test_verify_covers_every_node_of_the_zoo() -> None:
    """On ResNet-18 every module and every assignment in every forward is observed (nothing unmapped)."""
    report = verify(Path(__file__).resolve().parent.parent / "specs" / "resnet18.yaml", real=False)
    assert report.ok, report.format()
    assert report.checked > 100


# Specs Hypothesis found that specc got wrong, kept as they were shrunk (each failed before its fix).
FOUND = {
    # multihead_attention's batch-first output is a transposed view, and x + encodings keeps that layout:
    # specc let `view` take it, torch refused.
    "mha_output_is_not_contiguous": """
        name: Net
        inputs: {seq: {shape: [3, 2]}, mask: {shape: [3], dtype: bool}}
        layers:
        - {op: multihead_attention, num_heads: 1, in: seq, key_padding_mask: mask}
        - {op: positional_encoding}
        - {op: reshape, shape: [6]}
        """,
    # An absent layer (`when` false) that names a mask has one input besides it: it was refused (E206).
    "absent_layer_with_a_mask": """
        name: Net
        params: {heads: 0}
        inputs: {seq: {shape: [3, 2]}, mask: {shape: [3], dtype: bool}}
        layers:
        - {op: multihead_attention, num_heads: 1, in: seq, key_padding_mask: mask, when: heads > 0}
        - {op: adaptive_avg_pool1d, output_size: 1}
        """,
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_specs_hypothesis_found(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(FOUND[name]), encoding="utf-8")
    check_generated(path)
    report = verify(path)
    assert report.ok and report.checked, report.format()


def test_view_after_multihead_attention_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(FOUND["mha_output_is_not_contiguous"]).replace("reshape", "view"), encoding="utf-8")
    with pytest.raises(SpecErrors) as caught:
        analyze(path)
    assert "view `view1`: needs a contiguous input" in caught.value.format()
