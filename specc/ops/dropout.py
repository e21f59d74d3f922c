"""Dropout: element-wise, and channel-wise over (C, H, W) feature maps."""

from specc.ops.base import (
    Call,
    Inferred,
    Op,
    OpParams,
    Probability,
    TensorType,
    check_float,
    check_rank,
    kwargs_without_defaults,
)
from specc.ops.registry import register


class DropoutParams(OpParams):
    p: Probability = 0.5
    inplace: bool = False


class _Dropout(Op):
    Params = DropoutParams
    prefix = "dropout"
    ranks: tuple[int, ...] = ()  # empty: any rank
    keeps_layout = True

    def aliases(self, p: DropoutParams) -> bool:
        return True  # in place, or in eval mode (or with p = 0) its input itself

    def infer(self, p: DropoutParams, inputs: list[TensorType]) -> Inferred:
        x = check_rank(inputs, *self.ranks, what=self.name) if self.ranks else inputs[0]
        check_float(x, self.name)
        return Inferred(x)

    def emit(self, p: DropoutParams, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name, (), kwargs_without_defaults(p, ["p", "inplace"]))


@register
class Dropout(_Dropout):
    name = "dropout"
    torch_name = "nn.Dropout"
    summary = "Zeroes each element with probability `p` while training (identity in eval mode)."


@register
class Dropout2d(_Dropout):
    name = "dropout2d"
    ranks = (3,)
    torch_name = "nn.Dropout2d"
    summary = "Zeroes whole channels of (B, C, H, W) input with probability `p` while training."
