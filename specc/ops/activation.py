"""Activations: element-wise nonlinearities, and softmax/log-softmax over one dim. They count 0 MACs."""

from typing import Any, Literal

from specc.ops.base import (
    Call,
    Inferred,
    Op,
    OpParams,
    ShapeError,
    TensorType,
    check_float,
    kwargs_without_defaults,
)
from specc.ops.registry import register


class NoParams(OpParams):
    pass


class InplaceParams(OpParams):
    inplace: bool = False


class LeakyReLUParams(OpParams):
    negative_slope: float = 0.01
    inplace: bool = False


class ELUParams(OpParams):
    alpha: float = 1.0
    inplace: bool = False


class GELUParams(OpParams):
    approximate: Literal["none", "tanh"] = "none"


class SoftmaxParams(OpParams):
    dim: int = -1


class _Elementwise(Op):
    """Same shape and dtype out as in; every parameter is a keyword argument of the torch module."""

    keeps_layout = True

    def aliases(self, p: Any) -> bool:
        return bool(getattr(p, "inplace", False))

    def keeps_output(self, p: Any, out: TensorType) -> str | None:
        # Measured with torch: these backward passes read the op's output (the others read its input).
        keeps = self.name in ("relu", "sigmoid", "tanh") or (
            self.name in ("elu", "leaky_relu") and getattr(p, "inplace", False)
        )
        return f"autograd keeps {self.name}'s output for the backward pass" if keeps else None

    def infer(self, p: Any, inputs: list[TensorType]) -> Inferred:
        check_float(inputs[0], self.name)
        return Inferred(inputs[0])

    def emit(self, p: Any, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name, (), kwargs_without_defaults(p, list(type(p).model_fields)))


class _Softmax(Op):
    """`dim` counts the batch as dim 0, as in the generated code; negative dims count from the end."""

    Params = SoftmaxParams

    def keeps_output(self, p: SoftmaxParams, out: TensorType) -> str | None:
        return f"autograd keeps {self.name}'s output for the backward pass"

    def infer(self, p: SoftmaxParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        check_float(x, self.name)
        rank = x.rank + 1
        if not -rank <= p.dim < rank:
            raise ShapeError(
                "E104",
                f"dim {p.dim} is out of range for input {x.describe()} (valid: {-rank} to {rank - 1},"
                " counting the batch as dim 0)",
                field="dim",
            )
        return Inferred(x)

    def emit(self, p: SoftmaxParams, inputs: list[TensorType]) -> Call:
        # Always written out: the torch modules' own default (dim=None) is deprecated.
        return Call(self.torch_name, (), (("dim", p.dim),))


def _define(name: str, torch_name: str, params: type[OpParams], summary: str, base: type[Op] = _Elementwise) -> None:
    cls = type(
        torch_name.removeprefix("nn."),
        (base,),
        {
            "name": name,
            "Params": params,
            "prefix": name,
            "torch_name": torch_name,
            "summary": summary,
            "__module__": __name__,
        },
    )
    register(cls)


_define("relu", "nn.ReLU", InplaceParams, "Rectified linear unit, max(x, 0).")
_define("leaky_relu", "nn.LeakyReLU", LeakyReLUParams, "Leaky ReLU: x for x >= 0, `negative_slope` * x otherwise.")
_define("elu", "nn.ELU", ELUParams, "Exponential linear unit with scale `alpha` for negative inputs.")
_define("gelu", "nn.GELU", GELUParams, "Gaussian error linear unit; `approximate: tanh` for the tanh approximation.")
_define("silu", "nn.SiLU", InplaceParams, "Sigmoid linear unit (swish), x * sigmoid(x).")
_define("sigmoid", "nn.Sigmoid", NoParams, "Logistic sigmoid, 1 / (1 + exp(-x)).")
_define("tanh", "nn.Tanh", NoParams, "Hyperbolic tangent.")
_define("softmax", "nn.Softmax", SoftmaxParams, "Softmax over `dim` (default -1; the batch is dim 0).", _Softmax)
_define(
    "log_softmax",
    "nn.LogSoftmax",
    SoftmaxParams,
    "Log of softmax over `dim` (default -1; the batch is dim 0).",
    _Softmax,
)
