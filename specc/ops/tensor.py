"""Tensor manipulation computed in `forward`: permute, transpose, reshape, view, indexing (select, slice),
one piece of a chunk or split, and expand. None has parameters or counts MACs.

Dims count the batch as dim 0 (negative dims count from the end), as in `flatten` and `concat`; the batch
dim stays where it is. An op that gives one of several pieces (`chunk`, `split`) takes an `index`: write one
layer per piece you use.
"""

import math
from typing import Annotated, Any, Literal

from pydantic import Field

from specc.ops.base import (
    Call,
    Inferred,
    Op,
    OpParams,
    PosInt,
    ShapeError,
    TensorType,
    dims_desc,
    literal,
)
from specc.ops.registry import register
from specc.ops.reshape import normalize_dim


def _size_or_keep(name: str) -> Any:
    return Annotated[list[PosInt | Literal[-1]], Field(min_length=1, max_length=8, description=name)]


class _TensorOp(Op):
    kind = "function"

    def aliases(self, p: Any) -> bool:
        return True  # views of their input (reshape and expand where they can be)

    def is_view(self, p: Any) -> bool:
        return True

    def emit(self, p: Any, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name)


class PermuteParams(OpParams):
    dims: Annotated[list[int], Field(min_length=2, max_length=9)]


@register
class Permute(_TensorOp):
    name = "permute"
    Params = PermuteParams
    prefix = "permute"
    torch_name = "torch.permute"
    summary = "Reorders the dims: `dims` lists every dim (the batch, 0, stays first), e.g. [0, 2, 1]."

    def infer(self, p: PermuteParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        if len(p.dims) != x.rank + 1:
            raise ShapeError(
                "E104",
                f"dims {p.dims} has {len(p.dims)} entries, but its input {x.describe()} has {x.rank + 1} dims",
                field="dims",
            )
        rank = x.rank + 1
        order = [d + rank if d < 0 else d for d in p.dims]
        if sorted(order) != list(range(rank)):
            raise ShapeError("E104", f"dims {p.dims} is not a permutation of the dims 0..{rank - 1}", field="dims")
        if order[0] != 0:
            raise ShapeError("E104", f"dims {p.dims} moves the batch dim; it must stay first (0)", field="dims")
        out = TensorType(tuple(x.shape[d - 1] for d in order[1:]), x.dtype, contiguous=order == sorted(order))
        return Inferred(out)

    def forward_code(self, p: PermuteParams, inputs: list[TensorType], args: list[str]) -> str:
        return f"{args[0]}.permute({', '.join(map(str, p.dims))})"


class TransposeParams(OpParams):
    dim0: int
    dim1: int


@register
class Transpose(_TensorOp):
    name = "transpose"
    Params = TransposeParams
    prefix = "transpose"
    torch_name = "torch.transpose"
    summary = "Swaps dims `dim0` and `dim1` (the batch is dim 0 and stays), e.g. heads and sequence: 1, 2."

    def infer(self, p: TransposeParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        a, b = normalize_dim(p.dim0, x, "dim0"), normalize_dim(p.dim1, x, "dim1")
        shape = list(x.shape)
        shape[a - 1], shape[b - 1] = shape[b - 1], shape[a - 1]
        return Inferred(TensorType(tuple(shape), x.dtype, contiguous=x.contiguous and a == b))

    def forward_code(self, p: TransposeParams, inputs: list[TensorType], args: list[str]) -> str:
        return f"{args[0]}.transpose({p.dim0}, {p.dim1})"


class ReshapeParams(OpParams):
    shape: _size_or_keep("The per-sample shape (no batch dim); one size may be -1 (inferred).")  # type: ignore[valid-type]


def _reshaped(p: ReshapeParams, x: TensorType) -> tuple[int, ...]:
    unknown = p.shape.count(-1)
    if unknown > 1:
        raise ShapeError("E104", "at most one size of shape may be -1", field="shape")
    known = math.prod(s for s in p.shape if s != -1)
    if (x.numel % known != 0) if unknown else (x.numel != known):
        raise ShapeError(
            "E202",
            f"shape {dims_desc(p.shape)} does not hold the {x.numel} elements of each sample"
            f" ({x.describe()}: {dims_desc(x.shape)} = {x.numel})",
            field="shape",
        )
    return tuple(x.numel // known if s == -1 else s for s in p.shape)


@register
class Reshape(_TensorOp):
    name = "reshape"
    Params = ReshapeParams
    prefix = "reshape"
    torch_name = "torch.reshape"
    summary = "Gives each sample the shape `shape` (batch excluded; one size may be -1), copying if it must."
    keeps_layout = True  # a view where it can be, so it can stay non-contiguous

    def infer(self, p: ReshapeParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        return Inferred(TensorType(_reshaped(p, x), x.dtype))

    def forward_code(self, p: ReshapeParams, inputs: list[TensorType], args: list[str]) -> str:
        return f"{args[0]}.{self.name}({args[0]}.shape[0], {', '.join(map(str, p.shape))})"


@register
class View(Reshape):
    name = "view"
    prefix = "view"
    torch_name = "torch.Tensor.view"
    summary = "Like `reshape`, but never copies: its input must be contiguous (not straight after a transpose)."
    keeps_layout = False

    def infer(self, p: ReshapeParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        if not x.contiguous:
            raise ShapeError(
                "E202",
                f"view needs a contiguous input, but its input {x.describe()} is a non-contiguous view (from a"
                " transpose, permute, expand, indexing, or multihead_attention's batch-first output)",
                hint="use `reshape`, which copies when it must",
            )
        return super().infer(p, inputs)


class SelectParams(OpParams):
    dim: int
    index: int


@register
class Select(_TensorOp):
    name = "select"
    Params = SelectParams
    prefix = "select"
    torch_name = "torch.select"
    summary = "Takes position `index` of dim `dim`, removing the dim (e.g. the class token: `x[:, 0]`)."

    def infer(self, p: SelectParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        dim = normalize_dim(p.dim, x, "dim")
        size = x.shape[dim - 1]
        if not -size <= p.index < size:
            raise ShapeError(
                "E104",
                f"index {p.index} is out of range for dim {p.dim} of size {size} (input {x.describe()})",
                field="index",
            )
        return Inferred(TensorType(x.shape[: dim - 1] + x.shape[dim:], x.dtype, contiguous=False))

    def forward_code(self, p: SelectParams, inputs: list[TensorType], args: list[str]) -> str:
        dim = normalize_dim(p.dim, inputs[0], "dim")
        return f"{args[0]}[{', '.join([':'] * dim + [str(p.index)])}]"


class SliceParams(OpParams):
    dim: int
    start: int | None = Field(default=None, description="First position (default: the start).")
    end: int | None = Field(default=None, description="End position, excluded (default: the end).")
    step: PosInt = 1


@register
class Slice(_TensorOp):
    name = "slice"
    Params = SliceParams
    prefix = "slice"
    torch_name = "torch.narrow"
    summary = "Keeps positions `start:end:step` of dim `dim` (Python slicing, e.g. `x[:, 1:]`)."

    def infer(self, p: SliceParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        dim = normalize_dim(p.dim, x, "dim")
        size = len(range(*slice(p.start, p.end, p.step).indices(int(x.shape[dim - 1]))))
        if size < 1:
            raise ShapeError(
                "E202",
                f"slice {self._text(p)} of dim {p.dim} (size {x.shape[dim - 1]}) is empty (input {x.describe()})",
                field="start",
            )
        shape = (*x.shape[: dim - 1], size, *x.shape[dim:])
        return Inferred(TensorType(shape, x.dtype, contiguous=x.contiguous and size == x.shape[dim - 1]))

    @staticmethod
    def _text(p: SliceParams) -> str:
        text = f"{'' if p.start is None else p.start}:{'' if p.end is None else p.end}"
        return text + (f":{p.step}" if p.step != 1 else "")

    def forward_code(self, p: SliceParams, inputs: list[TensorType], args: list[str]) -> str:
        dim = normalize_dim(p.dim, inputs[0], "dim")
        return f"{args[0]}[{', '.join([':'] * dim + [self._text(p)])}]"


def _piece(sizes: list[int], index: int, what: str, x: TensorType) -> int:
    if not -len(sizes) <= index < len(sizes):
        raise ShapeError(
            "E104",
            f"index {index} is out of range: {what} of input {x.describe()} gives {len(sizes)} pieces"
            f" ({dims_desc(sizes)})",
            field="index",
        )
    return sizes[index]


class ChunkParams(OpParams):
    chunks: PosInt
    dim: int
    index: int = Field(description="Which piece this layer gives (0-based; negative counts from the end).")


@register
class Chunk(_TensorOp):
    name = "chunk"
    Params = ChunkParams
    prefix = "chunk"
    torch_name = "torch.chunk"
    summary = "Piece `index` of `chunks` equal pieces along `dim` (e.g. q, k, v of a fused projection)."

    def keeps_output(self, p: Any, out: TensorType) -> str | None:
        return f"its value is one of the views {self.name} returns, which torch lets no in-place op modify"

    def infer(self, p: ChunkParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        dim = normalize_dim(p.dim, x, "dim")
        n = int(x.shape[dim - 1])
        each = -(-n // p.chunks)  # torch.chunk: pieces of ceil(n / chunks), the last one smaller
        sizes = [min(each, n - start) for start in range(0, n, each)]
        size = _piece(sizes, p.index, f"chunk({p.chunks}) of dim {p.dim}", x)
        shape = (*x.shape[: dim - 1], size, *x.shape[dim:])
        return Inferred(TensorType(shape, x.dtype, contiguous=False))

    def forward_code(self, p: ChunkParams, inputs: list[TensorType], args: list[str]) -> str:
        return f"{args[0]}.chunk({p.chunks}, dim={p.dim})[{p.index}]"


class SplitParams(OpParams):
    split_size: PosInt | Annotated[list[PosInt], Field(min_length=1)] = Field(
        description="The size of each piece (the last may be smaller), or the list of the pieces' sizes."
    )
    dim: int
    index: int = Field(description="Which piece this layer gives (0-based; negative counts from the end).")


@register
class Split(_TensorOp):
    name = "split"
    Params = SplitParams
    prefix = "split"
    torch_name = "torch.split"
    summary = "Piece `index` of a split along `dim` into pieces of `split_size` (or of the listed sizes)."

    def keeps_output(self, p: Any, out: TensorType) -> str | None:
        return f"its value is one of the views {self.name} returns, which torch lets no in-place op modify"

    def infer(self, p: SplitParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        dim = normalize_dim(p.dim, x, "dim")
        n = int(x.shape[dim - 1])
        if isinstance(p.split_size, int):
            sizes = [min(p.split_size, n - start) for start in range(0, n, p.split_size)]
        else:
            sizes = list(p.split_size)
            if sum(sizes) != n:
                raise ShapeError(
                    "E202",
                    f"split sizes {dims_desc(sizes)} add up to {sum(sizes)}, but dim {p.dim} of its input"
                    f" {x.describe()} has size {n}",
                    field="split_size",
                )
        size = _piece(sizes, p.index, f"split of dim {p.dim}", x)
        shape = (*x.shape[: dim - 1], size, *x.shape[dim:])
        return Inferred(TensorType(shape, x.dtype, contiguous=False))

    def forward_code(self, p: SplitParams, inputs: list[TensorType], args: list[str]) -> str:
        return f"{args[0]}.split({literal(p.split_size)}, dim={p.dim})[{p.index}]"


class ExpandParams(OpParams):
    sizes: _size_or_keep("Per-sample sizes (no batch dim): -1 keeps a size, others expand a size-1 dim.") | None = (  # type: ignore[valid-type]
        None
    )


@register
class Expand(_TensorOp):
    name = "expand"
    Params = ExpandParams
    prefix = "expand"
    torch_name = "torch.Tensor.expand"
    summary = (
        "Repeats size-1 dims without copying: to `sizes`, and with a second input, the batch dim to that"
        " input's batch size (a class token expanded to the batch)."
    )
    max_inputs = 2

    def infer(self, p: ExpandParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        sizes = p.sizes if p.sizes is not None else [-1] * x.rank
        if len(sizes) != x.rank:
            raise ShapeError(
                "E104",
                f"sizes {sizes} has {len(sizes)} entries, but its input {x.describe()} has {x.rank} dims per sample",
                field="sizes",
            )
        for size, current in zip(sizes, x.shape, strict=True):
            if size != -1 and current not in (1, size):
                raise ShapeError(
                    "E202",
                    f"sizes {dims_desc(sizes)}: only size-1 dims expand, but its input is {x.describe()}",
                    field="sizes",
                )
        shape = tuple(current if size == -1 else size for size, current in zip(sizes, x.shape, strict=True))
        broadcast = x.broadcast and len(inputs) == 1
        # A dim of size 1 made larger, or a batch of 1 repeated to another input's: elements share memory.
        expanded = shape != x.shape or (x.broadcast and len(inputs) > 1)
        return Inferred(TensorType(shape, x.dtype, broadcast=broadcast, contiguous=False, expanded=expanded))

    def keeps_output(self, p: ExpandParams, out: TensorType) -> str | None:
        if out.expanded:
            return "it comes from `expand`, so several of its elements are one memory location"
        return None

    def forward_code(self, p: ExpandParams, inputs: list[TensorType], args: list[str]) -> str:
        batch = f"{args[1]}.shape[0]" if len(args) > 1 else "-1"
        sizes = p.sizes if p.sizes is not None else [-1] * inputs[0].rank
        return f"{args[0]}.expand({', '.join([batch, *map(str, sizes)])})"
