"""Reshaping: flatten a run of dims into one, or unflatten one dim into several.

Dims count the batch as dim 0, exactly as `nn.Flatten`/`nn.Unflatten` do; specc shapes keep the batch,
so an op may not fold the batch into another dim.
"""

import math
from typing import Annotated, Literal

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
    kwargs_without_defaults,
)
from specc.ops.registry import register


def normalize_dim(dim: int, x: TensorType, field: str) -> int:
    """`dim` (batch = 0, negative from the end) as a non-negative index into (B, *x.shape)."""
    rank = x.rank + 1
    if not -rank <= dim < rank:
        raise ShapeError(
            "E104",
            f"{field} {dim} is out of range for input {x.describe()} (valid: {-rank} to {rank - 1},"
            " counting the batch as dim 0)",
            field=field,
        )
    index = dim + rank if dim < 0 else dim
    if index == 0:
        raise ShapeError(
            "E104",
            f"{field} {dim} would reshape the batch dim of input {x.describe()}",
            field=field,
            hint="dims count the batch as dim 0; the first per-sample dim is 1",
        )
    return index


class FlattenParams(OpParams):
    start_dim: int = 1
    end_dim: int = -1


@register
class Flatten(Op):
    name = "flatten"
    Params = FlattenParams
    prefix = "flatten"
    torch_name = "nn.Flatten"
    summary = "Flattens dims `start_dim`..`end_dim` (default 1..-1, the batch is dim 0) into one."
    keeps_layout = True  # a view where it can be

    def aliases(self, p: FlattenParams) -> bool:
        return True

    def is_view(self, p: FlattenParams) -> bool:
        return True

    def infer(self, p: FlattenParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        start = normalize_dim(p.start_dim, x, "start_dim")
        end = normalize_dim(p.end_dim, x, "end_dim")
        if start > end:
            raise ShapeError(
                "E104",
                f"start_dim ({p.start_dim}) comes after end_dim ({p.end_dim}) for input {x.describe()}",
                field="end_dim",
            )
        # Dim i of the full tensor is dim i - 1 of the per-sample shape.
        merged = math.prod(x.shape[start - 1 : end])
        out = TensorType((*x.shape[: start - 1], merged, *x.shape[end:]), x.dtype)
        return Inferred(out)

    def emit(self, p: FlattenParams, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name, (), kwargs_without_defaults(p, ["start_dim", "end_dim"]))


class UnflattenParams(OpParams):
    dim: int
    sizes: Annotated[list[PosInt | Literal[-1]], Field(min_length=1)]


@register
class Unflatten(Op):
    name = "unflatten"
    Params = UnflattenParams
    prefix = "unflatten"
    torch_name = "nn.Unflatten"
    summary = "Splits dim `dim` (the batch is dim 0) into `sizes`; one size may be -1 (inferred)."
    keeps_layout = True

    def aliases(self, p: UnflattenParams) -> bool:
        return True

    def is_view(self, p: UnflattenParams) -> bool:
        return True

    def infer(self, p: UnflattenParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        dim = normalize_dim(p.dim, x, "dim")
        size = x.shape[dim - 1]
        unknown = p.sizes.count(-1)
        if unknown > 1:
            raise ShapeError("E104", "at most one of sizes may be -1", field="sizes")
        known = math.prod(s for s in p.sizes if s != -1)
        if (size % known != 0) if unknown else (size != known):
            raise ShapeError(
                "E202",
                f"sizes {dims_desc(p.sizes)} (product {known}) do not split dim {p.dim} of size {size}"
                f" (input {x.describe()})",
                field="sizes",
            )
        sizes = tuple(size // known if s == -1 else s for s in p.sizes)
        out = TensorType((*x.shape[: dim - 1], *sizes, *x.shape[dim:]), x.dtype)
        return Inferred(out)

    def emit(self, p: UnflattenParams, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name, (p.dim, p.sizes))
