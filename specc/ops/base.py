"""The layer registry's contract. One op = one class: parameter schema, shape rule, counts, emitter.

An op never imports torch. Its `emit` returns a `Call` (data), which the code generator prints;
ops of kind "module" become `self.<name> = <Call>` in `__init__` and `x = self.<name>(x)` in
`forward`, ops of kind "function" are printed straight into `forward` with their inputs as arguments.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from specc.symbolic import Dim, has_dim

DType = Literal["float32", "float64", "float16", "bfloat16", "int64", "int32", "bool"]
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INT_DTYPES = ("int64", "int32")
MAX_DIM = 2**31 - 1
# The most elements one tensor (a parameter, or a sample's activation) may hold: 2^40 float32 values are
# 4 TiB, far past any real layer, and far below where torch's own size arithmetic overflows (2^63 bytes).
MAX_NUMEL = 2**40

PosInt = Annotated[int, Field(ge=1, le=MAX_DIM)]
NonNegInt = Annotated[int, Field(ge=0, le=MAX_DIM)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
# A parameter naming another node (an input or an earlier layer) whose value the op takes as an extra
# input, e.g. an attention mask. The resolver appends such references to the node's inputs.
NodeRef = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class OpParams(BaseModel):
    """Base of every op's parameter model: strict types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass(frozen=True)
class TensorType:
    """A tensor's per-sample shape (the batch dimension is implicit and leads) and dtype.

    `broadcast`: the tensor is the same for every sample, its batch dim is 1 (an `nn.Parameter`
    such as a class token, and what is computed from it alone); it broadcasts in `add`/`mul`, and
    `expand` gives it the batch size of another tensor. `contiguous`: False after a view that
    reorders or strides memory (transpose, permute, indexing), which `view` cannot take.
    `expanded`: made by `expand` from a size-1 dim (or a batch of 1), so some of its elements share one
    memory location (no in-place op may write it: see `Op.keeps_output`).
    """

    shape: tuple[int, ...]
    dtype: str = "float32"
    broadcast: bool = False
    contiguous: bool = True
    expanded: bool = False

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def batch(self) -> str:
        """How comments and messages show the batch dim: `B`, or `1` for a broadcast tensor."""
        return "1" if self.broadcast else "B"

    def describe(self) -> str:
        dims = ", ".join(str(d) for d in self.shape)
        return f"({self.batch}, {dims})" if dims else f"({self.batch},)"

    def with_shape(self, shape: tuple[int, ...]) -> "TensorType":
        return replace(self, shape=shape)


class ShapeError(Exception):
    """Raised by a shape rule; the resolver turns it into a located SpecError.

    `field` names the parameter at fault (its location is used), or None for the node itself.
    """

    def __init__(self, code: str, message: str, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.hint = hint


@dataclass(frozen=True)
class Call:
    """A call in generated code: `target(*args, **kwargs)`. Values are printed with `repr()`.

    `raw_args` are code fragments placed first (variable names chosen by the code generator).
    """

    target: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    raw_args: tuple[str, ...] = ()

    def render(self) -> str:
        parts = list(self.raw_args)
        parts += [literal(a) for a in self.args]
        parts += [f"{k}={literal(v)}" for k, v in self.kwargs]
        return f"{self.target}({', '.join(parts)})"


def literal(value: Any) -> str:
    """Python source for a spec value: only numbers, bools, None, strings, and lists/tuples of them.

    A symbolic size (inside a block's class) prints as its expression, e.g. `planes * 4`.
    """
    if isinstance(value, Dim):
        return value.source
    if isinstance(value, (list, tuple)):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(f"cannot print {type(value).__name__} into generated code")


def kwargs_without_defaults(params: OpParams, names: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments for `names`, leaving out those equal to the parameter model's default."""
    fields = type(params).model_fields
    out = []
    for name in names:
        value = getattr(params, name)
        if has_dim(value) or value != fields[name].default:
            out.append((name, value))
    return tuple(out)


@dataclass(frozen=True)
class Inferred:
    """What shape inference knows about one node.

    `tensors` names the module's parameters with their sizes, as `named_parameters()` would
    (e.g. `(("weight", 150), ("bias", 6))`); when left empty, a module with `params` has one `weight`.
    """

    out: TensorType
    params: int = 0
    macs: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    tensors: tuple[tuple[str, int], ...] = ()
    # Full shapes of some of those tensors (at least `weight` for ops that can share it with `tie`).
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def parameters(self) -> dict[str, int]:
        named = dict(self.tensors) if self.tensors else ({"weight": self.params} if self.params else {})
        assert sum(named.values()) == self.params, "an op's tensors must add up to its parameter count"
        return named


@dataclass(frozen=True)
class HelperClass:
    """A small `nn.Module` that model.py defines because an op's code uses it and torch has none.

    Printed like a block class: `__init__(self, *init_params)` runs `init_lines`, `forward(self, x)`
    runs `forward_lines` and returns `output`. `imports` are the lines its code needs.
    """

    name: str
    init_params: tuple[str, ...]
    init_lines: tuple[str, ...]
    forward_lines: tuple[str, ...]
    output: str
    imports: tuple[str, ...] = ()


def weight_and_bias(weight: int, bias: int) -> dict[str, object]:
    """`Inferred` keyword arguments for a module with a weight and an optional bias (bias=0: none)."""
    tensors = (("weight", weight), ("bias", bias)) if bias else (("weight", weight),)
    return {"params": weight + bias, "tensors": tensors}


class Op:
    """Base class of every layer type. Subclasses set the ClassVars and override the methods.

    Kinds: "module" ops are attributes built in `__init__` and called in `forward`; "function" ops
    are expressions in `forward`; "parameter" ops take no input and are a tensor attribute
    (`self.<name> = nn.Parameter(...)`), used in `forward` as `self.<name>`.
    """

    name: ClassVar[str]
    Params: ClassVar[type[OpParams]] = OpParams
    kind: ClassVar[Literal["module", "function", "parameter"]] = "module"
    prefix: ClassVar[str] = ""  # default node-name stem: conv2d -> conv1, conv2, ...
    torch_name: ClassVar[str] = ""  # for the supported-ops table
    summary: ClassVar[str] = ""
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    # Parameters that the user need not write because shape inference fills them in.
    inferred_params: ClassVar[tuple[str, ...]] = ()
    # Parameters (typed `NodeRef | None`) that name extra inputs, e.g. masks; when set, the node's
    # value is appended to the inputs, in this order, after the inputs given by `in`.
    ref_params: ClassVar[tuple[str, ...]] = ()
    # Whether a layer may share its `weight` with an earlier layer's (`tie: <name>`); `infer` must then
    # give the weight's shape in `Inferred.shapes`.
    tieable: ClassVar[bool] = False
    # Whether the output keeps the input's memory layout (element-wise ops, dropout): a non-contiguous
    # input gives a non-contiguous output. Other ops' outputs are as their `infer` says.
    keeps_layout: ClassVar[bool] = False

    def aliases(self, p: Any) -> bool:
        """Whether the output may be its (first) input's memory, or a view of it: a view op, an in-place op,
        or one that can return its input as it is (dropout in eval mode); any other op's output is a new
        tensor. specc/inplace.py follows memory through these."""
        return False

    def is_view(self, p: Any) -> bool:
        """Whether the output is always a view of the (first) input, made without reading its values
        (reshape, transpose, identity): reading the view is what reads the input."""
        return False

    def keeps_output(self, p: Any, out: TensorType) -> str | None:
        """Why no in-place op may overwrite this op's output `out` (or what may share its memory), e.g.
        autograd keeps it for the backward pass (relu, sigmoid, softmax), or it is a parameter; None if one
        may."""
        return None

    def refs(self, p: Any) -> int:
        """How many of `inputs` are extra inputs named by `ref_params`."""
        return sum(getattr(p, name, None) is not None for name in self.ref_params)

    def chainable(self, p: Any) -> "str | None":
        """None if the layer can be a child of a sequential (called with one tensor, returning one);
        else the reason it cannot."""
        if self.kind == "function":
            return "it is computed in forward, not a module"
        if self.kind == "parameter":
            return "it takes no input"
        if self.refs(p):
            return "it takes extra inputs (masks)"
        return None

    def module_call(self, p: Any, inputs: list[TensorType], module: str, args: list[str]) -> str:
        """Kind "module": the expression computed in `forward` by calling `module` on the inputs."""
        return f"{module}({', '.join(args)})"

    def imports(self, p: Any) -> tuple[str, ...]:
        """Import lines the emitted code needs beyond `import torch` and `from torch import nn`."""
        return ()

    def helpers(self, p: Any) -> tuple[HelperClass, ...]:
        """Classes model.py must define for the emitted code."""
        return ()

    def infer(self, p: Any, inputs: list[TensorType]) -> Inferred:
        raise NotImplementedError

    def emit(self, p: Any, inputs: list[TensorType]) -> Call:
        """Kind "module": the constructor call, e.g. `nn.Conv2d(1, 6, kernel_size=5)`.

        Kind "function": the call made in `forward` without its tensor arguments, e.g.
        `Call("torch.cat", kwargs=(("dim", 1),))`; `forward_code` adds the tensors first.
        """
        raise NotImplementedError

    def forward_code(self, p: Any, inputs: list[TensorType], args: list[str]) -> str:
        """Kind "function" only: the expression computed in `forward` from the input variables `args`."""
        call = self.emit(p, inputs)
        return Call(call.target, call.args, call.kwargs, raw_args=tuple(args)).render()


def check_rank(inputs: list[TensorType], *ranks: int, what: str) -> TensorType:
    """The single input, if its rank (without batch) is one of `ranks`."""
    x = inputs[0]
    if x.rank not in ranks:
        wanted = " or ".join(f"(B, {', '.join(['*'] * r)})" if r else "(B,)" for r in ranks)
        raise ShapeError("E203", f"{what} expects input of shape {wanted}, but its input is {x.describe()}")
    return x


def check_float(x: TensorType, what: str) -> None:
    if x.dtype not in FLOAT_DTYPES:
        raise ShapeError("E205", f"{what} expects a floating-point input, but its input is {x.dtype}")


def check_declared(p: Any, field_name: str, inferred: int, source: str) -> None:
    """If the user wrote an inferred size, it must agree with inference."""
    declared = getattr(p, field_name, None)
    if declared is not None and declared != inferred:
        raise ShapeError(
            "E201",
            f"{field_name} is {declared}, but its input has {inferred} ({source})",
            field=field_name,
            hint=f"remove `{field_name}`: specc infers it",
        )


def as_tuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    return (value,) * n if isinstance(value, int) else tuple(value)


def dims_desc(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)
