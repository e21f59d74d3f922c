"""Normalization layers: batch norm (1d/2d), layer norm and group norm.

Parameter counts are those of `parameters()` (running statistics are buffers, not parameters).
Normalization counts 0 MACs, as torchvision's published GFLOPs do.
"""

import math
from typing import Annotated

from pydantic import Field

from specc.ops.base import (
    Call,
    Inferred,
    Op,
    OpParams,
    PosInt,
    PositiveFloat,
    Probability,
    ShapeError,
    TensorType,
    check_declared,
    check_float,
    check_rank,
    dims_desc,
    kwargs_without_defaults,
    weight_and_bias,
)
from specc.ops.registry import register


def _check_has_dims(x: TensorType, what: str, wanted: str) -> TensorType:
    if x.rank == 0:
        raise ShapeError("E203", f"{what} expects input of shape {wanted}, but its input is {x.describe()}")
    return x


class BatchNormParams(OpParams):
    eps: PositiveFloat = 1e-5
    momentum: Probability | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
    num_features: PosInt | None = None


class _BatchNorm(Op):
    ranks: tuple[int, ...]
    Params = BatchNormParams
    prefix = "bn"
    inferred_params = ("num_features",)

    def infer(self, p: BatchNormParams, inputs: list[TensorType]) -> Inferred:
        x = check_rank(inputs, *self.ranks, what=self.name)
        check_float(x, self.name)
        c = x.shape[0]
        check_declared(p, "num_features", c, f"input {x.describe()}")
        if x.broadcast and math.prod(int(d) for d in x.shape[1:]) == 1:
            # torch's _verify_batch_size: batch x spatial values per channel must be more than 1 in training.
            raise ShapeError(
                "E202",
                f"{self.name} normalizes each channel over the batch, but its input {x.describe()} is the same"
                " for every sample (batch 1) with one value per channel: torch refuses it while training",
                hint="normalize per sample with layer_norm, or apply it after the value is expanded to the batch",
            )
        return Inferred(x, **weight_and_bias(c, c) if p.affine else {})  # type: ignore[arg-type]

    def emit(self, p: BatchNormParams, inputs: list[TensorType]) -> Call:
        kwargs = kwargs_without_defaults(p, ["eps", "momentum", "affine", "track_running_stats"])
        return Call(self.torch_name, (inputs[0].shape[0],), kwargs)


@register
class BatchNorm1d(_BatchNorm):
    name = "batch_norm1d"
    ranks = (1, 2)
    torch_name = "nn.BatchNorm1d"
    summary = "Batch normalization of (B, C) or (B, C, L) input; `num_features` is inferred."


@register
class BatchNorm2d(_BatchNorm):
    name = "batch_norm2d"
    ranks = (3,)
    torch_name = "nn.BatchNorm2d"
    summary = "Batch normalization of (B, C, H, W) input; `num_features` is inferred."


class LayerNormParams(OpParams):
    normalized_shape: PosInt | Annotated[list[PosInt], Field(min_length=1)] | None = None
    eps: PositiveFloat = 1e-5
    elementwise_affine: bool = True
    bias: bool = True


def _normalized_shape(p: LayerNormParams, x: TensorType) -> tuple[int, ...]:
    """The normalized (trailing) dims: as declared, else the input's last dim."""
    if p.normalized_shape is None:
        return x.shape[-1:]
    return (p.normalized_shape,) if isinstance(p.normalized_shape, int) else tuple(p.normalized_shape)


@register
class LayerNorm(Op):
    name = "layer_norm"
    Params = LayerNormParams
    prefix = "norm"
    torch_name = "nn.LayerNorm"
    summary = "Layer normalization over the trailing dims; `normalized_shape` defaults to the last dim."
    inferred_params = ("normalized_shape",)

    def infer(self, p: LayerNormParams, inputs: list[TensorType]) -> Inferred:
        x = _check_has_dims(inputs[0], self.name, "(B, ..., D)")
        check_float(x, self.name)
        shape = _normalized_shape(p, x)
        trailing = x.shape[-len(shape) :] if len(shape) <= x.rank else x.shape
        if shape != trailing:
            raise ShapeError(
                "E201",
                f"normalized_shape is {dims_desc(shape)}, but the trailing dims of its input {x.describe()}"
                f" are {dims_desc(trailing)}",
                field="normalized_shape",
                hint="remove `normalized_shape` to normalize over the last dim",
            )
        size = math.prod(shape)
        return Inferred(x, **weight_and_bias(size, size if p.bias else 0) if p.elementwise_affine else {})  # type: ignore[arg-type]

    def emit(self, p: LayerNormParams, inputs: list[TensorType]) -> Call:
        shape = _normalized_shape(p, inputs[0])
        arg: int | tuple[int, ...] = shape[0] if len(shape) == 1 else shape
        kwargs = kwargs_without_defaults(p, ["eps", "elementwise_affine", "bias"])
        return Call(self.torch_name, (arg,), kwargs)


class GroupNormParams(OpParams):
    num_groups: PosInt
    eps: PositiveFloat = 1e-5
    affine: bool = True
    num_channels: PosInt | None = None


@register
class GroupNorm(Op):
    name = "group_norm"
    Params = GroupNormParams
    prefix = "norm"
    torch_name = "nn.GroupNorm"
    summary = "Group normalization of (B, C, *) input into `num_groups` groups; `num_channels` is inferred."
    inferred_params = ("num_channels",)

    def infer(self, p: GroupNormParams, inputs: list[TensorType]) -> Inferred:
        x = _check_has_dims(inputs[0], self.name, "(B, C, *)")
        check_float(x, self.name)
        c = x.shape[0]
        check_declared(p, "num_channels", c, f"input {x.describe()}")
        if c % p.num_groups:
            raise ShapeError(
                "E202", f"num_channels ({c}) must be divisible by num_groups ({p.num_groups})", field="num_groups"
            )
        values = c // p.num_groups * math.prod(int(d) for d in x.shape[1:])
        if values == 1:
            # torch's _verify_batch_size over (B * C / G, G, *spatial) refuses it at batch 1, and at any batch a
            # group of one value normalizes to 0: the output would be the bias alone.
            raise ShapeError(
                "E202",
                f"each of the {p.num_groups} groups of its input {x.describe()} holds a single value per sample"
                f" ({c} channels / {p.num_groups} groups"
                + (f" x {dims_desc(x.shape[1:])} = 1" if x.rank > 1 else "")
                + "), which normalizes to 0 (torch refuses it at batch 1)",
                field="num_groups",
                hint="use fewer groups, or layer_norm over the features",
            )
        return Inferred(x, **weight_and_bias(c, c) if p.affine else {})  # type: ignore[arg-type]

    def emit(self, p: GroupNormParams, inputs: list[TensorType]) -> Call:
        kwargs = kwargs_without_defaults(p, ["eps", "affine"])
        return Call(self.torch_name, (p.num_groups, inputs[0].shape[0]), kwargs)
