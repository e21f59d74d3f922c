"""Fully connected and pass-through layers."""

from typing import Any

from specc.ops.base import (
    Call,
    Inferred,
    Op,
    OpParams,
    PosInt,
    TensorType,
    check_declared,
    check_float,
    check_rank,
    dims_desc,
    weight_and_bias,
)
from specc.ops.registry import register


class LinearParams(OpParams):
    out_features: PosInt
    bias: bool = True
    in_features: PosInt | None = None


@register
class Linear(Op):
    name = "linear"
    Params = LinearParams
    prefix = "fc"
    torch_name = "nn.Linear"
    summary = "Fully connected layer over the last dimension; `in_features` is inferred."
    inferred_params = ("in_features",)
    tieable = True

    def infer(self, p: LinearParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        if x.rank == 0:
            check_rank(inputs, 1, 2, 3, what="linear")
        check_float(x, "linear")
        in_features = x.shape[-1]
        source = f"input {x.describe()}"
        if x.rank > 1:
            source += f"; flatten it first if you meant {dims_desc(x.shape)} = {x.numel} features"
        check_declared(p, "in_features", in_features, source)
        out = TensorType((*x.shape[:-1], p.out_features), x.dtype)
        rows = x.numel // in_features
        weights = weight_and_bias(in_features * p.out_features, p.out_features if p.bias else 0)
        shapes = (("weight", (p.out_features, in_features)),)
        return Inferred(out, macs=rows * in_features * p.out_features, shapes=shapes, **weights)  # type: ignore[arg-type]

    def emit(self, p: LinearParams, inputs: list[TensorType]) -> Call:
        kwargs = () if p.bias else (("bias", False),)
        return Call("nn.Linear", (inputs[0].shape[-1], p.out_features), kwargs)


class IdentityParams(OpParams):
    pass


@register
class Identity(Op):
    name = "identity"
    Params = IdentityParams
    prefix = "identity"
    torch_name = "nn.Identity"
    summary = "Returns its input unchanged (a placeholder, e.g. for a removed head)."
    keeps_layout = True

    def aliases(self, p: Any) -> bool:
        return True

    def is_view(self, p: Any) -> bool:
        return True

    def infer(self, p: Any, inputs: list[TensorType]) -> Inferred:
        return Inferred(inputs[0])

    def emit(self, p: Any, inputs: list[TensorType]) -> Call:
        return Call("nn.Identity")
