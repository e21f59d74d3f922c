"""Learned tensors that are not a layer's: `nn.Parameter` attributes such as a class token or a position table.

A parameter takes no input. Its `shape` is per sample, like every shape in a spec: the tensor has a leading
batch dim of 1 (`shape: [1, 768]` makes a (1, 1, 768) tensor), so it broadcasts over the batch in `add` and
`mul`, and `expand` (with a second input) repeats it to another tensor's batch size.
"""

import math
from typing import Annotated, Literal

from pydantic import Field

from specc.ops.base import Call, Inferred, Op, OpParams, PosInt, PositiveFloat, TensorType, literal
from specc.ops.registry import register


class ParameterParams(OpParams):
    shape: Annotated[list[PosInt], Field(min_length=1, max_length=8)]
    init: Literal["zeros", "ones", "normal", "trunc_normal"] = "zeros"
    mean: float = 0.0
    std: PositiveFloat = 1.0
    requires_grad: bool = True


@register
class Parameter(Op):
    name = "parameter"
    Params = ParameterParams
    kind = "parameter"
    prefix = "param"
    torch_name = "nn.Parameter"
    summary = (
        "A learned tensor attribute (`self.<name>`), no input: `shape` is per sample (a leading 1 is added);"
        " `init` zeros, ones, normal or trunc_normal (`mean`, `std`)."
    )
    min_inputs = 0
    max_inputs = 0

    def keeps_output(self, p: ParameterParams, out: TensorType) -> str | None:
        return "it is a parameter's value (autograd refuses an in-place op on a parameter)"

    def infer(self, p: ParameterParams, inputs: list[TensorType]) -> Inferred:
        shape = tuple(p.shape)
        size = math.prod(shape)
        return Inferred(
            TensorType(shape, "float32", broadcast=True),
            params=size,
            tensors=(("", size),),
            shapes=(("", (1, *shape)),),
        )

    def emit(self, p: ParameterParams, inputs: list[TensorType]) -> Call:
        sizes = ", ".join(literal(d) for d in (1, *p.shape))
        stats = [f"mean={p.mean!r}"] if p.mean else []
        stats += [f"std={p.std!r}"] if p.std != 1.0 else []
        if p.init in ("zeros", "ones"):
            tensor = f"torch.{p.init}({sizes})"
        elif p.init == "normal":
            tensor = f"torch.empty({sizes}).normal_({', '.join(stats)})"
        else:
            tensor = f"nn.init.trunc_normal_({', '.join([f'torch.empty({sizes})', *stats])})"
        kwargs = (("requires_grad", False),) if not p.requires_grad else ()
        return Call(self.torch_name, (), kwargs, raw_args=(tensor,))
