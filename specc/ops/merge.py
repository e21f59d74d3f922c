"""Merges of several inputs, computed in `forward`: element-wise add/mul (with broadcasting) and concat."""

from typing import Any

from specc.ops.base import Call, Inferred, Op, OpParams, ShapeError, TensorType
from specc.ops.registry import register

# torch's type promotion among specc dtypes: the later category wins (bool < integer < floating point);
# within a category the wider type wins, and float16 with bfloat16 gives float32.
_PROMOTION_ORDER = ("bool", "int32", "int64", "float16", "bfloat16", "float32", "float64")


def promote(a: str, b: str) -> str:
    if {a, b} == {"float16", "bfloat16"}:
        return "float32"
    return max(a, b, key=_PROMOTION_ORDER.index)


def _incompatible(what: str, a: TensorType, b: TensorType, i: int, reason: str) -> ShapeError:
    return ShapeError("E204", f"{what}: input {i + 1} has shape {b.describe()}, which {reason} {a.describe()}")


class NoParams(OpParams):
    pass


class _Elementwise(Op):
    """Inputs broadcast by torch's rules; since the batch size is unknown, all inputs need the same rank."""

    Params = NoParams
    kind = "function"
    min_inputs = 2
    max_inputs = None
    keeps_layout = True
    operator: str

    def infer(self, p: Any, inputs: list[TensorType]) -> Inferred:
        acc = inputs[0]
        for i, x in enumerate(inputs[1:], start=1):
            if x.rank != acc.rank:
                raise _incompatible(self.name, acc, x, i, "has a different rank than")
            dims = []
            for m, n in zip(acc.shape, x.shape, strict=True):
                if m != n and 1 not in (m, n):
                    raise _incompatible(self.name, acc, x, i, "does not broadcast with")
                dims.append(max(m, n) if 1 in (m, n) else m)
            acc = TensorType(tuple(dims), promote(acc.dtype, x.dtype))
        return Inferred(acc)

    def emit(self, p: Any, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name)

    def forward_code(self, p: Any, inputs: list[TensorType], args: list[str]) -> str:
        return f" {self.operator} ".join(args)


@register
class Add(_Elementwise):
    name = "add"
    prefix = "add"
    torch_name = "torch.add"
    operator = "+"
    summary = "Element-wise sum of its inputs (`a + b + ...`), broadcasting size-1 dims."


@register
class Mul(_Elementwise):
    name = "mul"
    prefix = "mul"
    torch_name = "torch.mul"
    operator = "*"
    summary = "Element-wise product of its inputs (`a * b * ...`), broadcasting size-1 dims."


class ConcatParams(OpParams):
    dim: int = 1


@register
class Concat(Op):
    name = "concat"
    Params = ConcatParams
    kind = "function"
    min_inputs = 2
    max_inputs = None
    prefix = "cat"
    torch_name = "torch.cat"
    summary = "Concatenates its inputs along `dim` (default 1, the channels; the batch is dim 0)."

    def infer(self, p: ConcatParams, inputs: list[TensorType]) -> Inferred:
        first = inputs[0]
        rank = first.rank + 1
        if not -rank <= p.dim < rank:
            raise ShapeError(
                "E104",
                f"dim {p.dim} is out of range for input {first.describe()} (valid: {-rank} to {rank - 1},"
                " counting the batch as dim 0)",
                field="dim",
            )
        dim = p.dim + rank if p.dim < 0 else p.dim
        if dim == 0:
            raise ShapeError(
                "E104",
                "concat cannot join along the batch dim (dim 0)",
                field="dim",
                hint="dims count the batch as dim 0; the channels are dim 1",
            )
        axis = dim - 1
        if len({x.broadcast for x in inputs}) > 1:
            shared = next(i for i, x in enumerate(inputs) if x.broadcast)
            raise ShapeError(
                "E204",
                f"concat: input {shared + 1} {inputs[shared].describe()} has a batch dim of 1 (it is the same for"
                " every sample), but others have the batch size",
                hint="expand it to the batch first: `{op: expand, in: [<it>, <a batched input>]}`",
            )
        acc = first
        for i, x in enumerate(inputs[1:], start=1):
            if x.rank != acc.rank:
                raise _incompatible(self.name, acc, x, i, "has a different rank than")
            if any(m != n for j, (m, n) in enumerate(zip(acc.shape, x.shape, strict=True)) if j != axis):
                raise _incompatible(self.name, acc, x, i, f"differs outside dim {p.dim} from")
            shape = list(acc.shape)
            shape[axis] += x.shape[axis]
            acc = TensorType(tuple(shape), promote(acc.dtype, x.dtype))
        return Inferred(acc)

    def emit(self, p: ConcatParams, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name, (), (("dim", p.dim),))

    def forward_code(self, p: ConcatParams, inputs: list[TensorType], args: list[str]) -> str:
        tensors = f"({args[0]},)" if len(args) == 1 else f"({', '.join(args)})"
        return Call(self.torch_name, kwargs=(("dim", p.dim),), raw_args=(tensors,)).render()
