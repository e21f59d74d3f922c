"""Convolutions: conv1d/2d/3d and their transposes, with PyTorch's exact output-size formulas."""

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
    as_tuple,
    check_declared,
    check_float,
    check_rank,
    kwargs_without_defaults,
    weight_and_bias,
)
from specc.ops.registry import register


def _sizes(n: int, minimum: int) -> type:
    """An int, or a list of exactly `n` ints, each >= minimum (PyTorch's `_size_n_t`)."""
    item = Annotated[int, Field(ge=minimum, le=2**31 - 1)]
    return item | Annotated[list[item], Field(min_length=n, max_length=n)]  # type: ignore[return-value]


def conv_params(n: int, transposed: bool) -> type[OpParams]:
    class ConvParams(OpParams):
        out_channels: PosInt
        kernel_size: _sizes(n, 1)  # type: ignore[valid-type]
        stride: _sizes(n, 1) = 1  # type: ignore[valid-type]
        padding: _sizes(n, 0) | Literal["same", "valid"] = 0  # type: ignore[valid-type]
        dilation: _sizes(n, 1) = 1  # type: ignore[valid-type]
        groups: PosInt = 1
        bias: bool = True
        padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"
        in_channels: PosInt | None = None

    class ConvTransposeParams(OpParams):
        out_channels: PosInt
        kernel_size: _sizes(n, 1)  # type: ignore[valid-type]
        stride: _sizes(n, 1) = 1  # type: ignore[valid-type]
        padding: _sizes(n, 0) = 0  # type: ignore[valid-type]
        output_padding: _sizes(n, 0) = 0  # type: ignore[valid-type]
        dilation: _sizes(n, 1) = 1  # type: ignore[valid-type]
        groups: PosInt = 1
        bias: bool = True
        in_channels: PosInt | None = None

    cls = ConvTransposeParams if transposed else ConvParams
    cls.__name__ = f"Conv{'Transpose' if transposed else ''}{n}dParams"
    return cls


class _ConvNd(Op):
    dims: int
    transposed: bool = False
    prefix = "conv"
    inferred_params = ("in_channels",)

    def infer(self, p, inputs: list[TensorType]) -> Inferred:  # type: ignore[no-untyped-def]
        n = self.dims
        x = check_rank(inputs, n + 1, what=self.name)
        check_float(x, self.name)
        c_in, spatial = x.shape[0], x.shape[1:]
        check_declared(p, "in_channels", c_in, f"input {x.describe()}")
        for what, value in (("in_channels", c_in), ("out_channels", p.out_channels)):
            if value % p.groups:
                raise ShapeError("E202", f"{what} ({value}) must be divisible by groups ({p.groups})", field="groups")
        k, s, d = as_tuple(p.kernel_size, n), as_tuple(p.stride, n), as_tuple(p.dilation, n)
        if self.transposed:
            pad, out_pad = as_tuple(p.padding, n), as_tuple(p.output_padding, n)
            for i in range(n):
                if out_pad[i] >= max(s[i], d[i]):
                    raise ShapeError(
                        "E202", "output_padding must be smaller than either stride or dilation", field="output_padding"
                    )
            out_sp = tuple((spatial[i] - 1) * s[i] - 2 * pad[i] + d[i] * (k[i] - 1) + out_pad[i] + 1 for i in range(n))
        else:
            if p.padding == "same":
                if any(si != 1 for si in s):
                    raise ShapeError(
                        "E104", "padding='same' is not supported for strided convolutions", field="padding"
                    )
                out_sp = tuple(spatial)
            else:
                pad = (0,) * n if p.padding == "valid" else as_tuple(p.padding, n)
                out_sp = []
                for i in range(n):
                    effective = d[i] * (k[i] - 1) + 1
                    padded = spatial[i] + 2 * pad[i]
                    if p.padding_mode in ("reflect", "circular") and pad[i] > spatial[i] - (
                        p.padding_mode == "reflect"
                    ):
                        raise ShapeError(
                            "E202",
                            f"padding {pad[i]} is too large for {p.padding_mode} padding"
                            f" of an input of size {spatial[i]}",
                            field="padding",
                        )
                    if effective > padded:
                        raise ShapeError(
                            "E202",
                            f"kernel size {effective}{' (dilated)' if d[i] > 1 else ''} is larger than"
                            f" the padded input size {padded} (input {x.describe()})",
                            field="kernel_size",
                        )
                    out_sp.append((padded - effective) // s[i] + 1)
                out_sp = tuple(out_sp)
        if any(o <= 0 for o in out_sp):
            raise ShapeError(
                "E202", f"output size {out_sp} is not positive (input {x.describe()})", field="kernel_size"
            )
        out = TensorType((p.out_channels, *out_sp), x.dtype)
        weights = c_in // p.groups * p.out_channels * math.prod(k)
        # MACs per output element = (c_in / groups) * prod(k); transposed convs scatter from each input element.
        macs = x.numel * (p.out_channels // p.groups) * math.prod(k) if self.transposed else math.prod(out_sp) * weights
        return Inferred(out, macs=macs, **weight_and_bias(weights, p.out_channels if p.bias else 0))  # type: ignore[arg-type]

    def emit(self, p, inputs: list[TensorType]) -> Call:  # type: ignore[no-untyped-def]
        names = ["stride", "padding"]
        names += (
            ["output_padding", "groups", "bias", "dilation"]
            if self.transposed
            else ["dilation", "groups", "bias", "padding_mode"]
        )
        kwargs = (("kernel_size", p.kernel_size), *kwargs_without_defaults(p, names))
        return Call(self.torch_name, (inputs[0].shape[0], p.out_channels), kwargs)


def _define(n: int, transposed: bool) -> None:
    kind = "Transpose" if transposed else ""
    what = "Transposed convolution" if transposed else "Convolution"
    cls = type(
        f"Conv{kind}{n}d",
        (_ConvNd,),
        {
            "name": f"conv{'_transpose' if transposed else ''}{n}d",
            "Params": conv_params(n, transposed),
            "dims": n,
            "transposed": transposed,
            "torch_name": f"nn.Conv{kind}{n}d",
            "summary": f"{what} over {n} spatial dim{'s' if n > 1 else ''}; `in_channels` is inferred.",
            "__module__": __name__,
        },
    )
    register(cls)


for _n in (1, 2, 3):
    _define(_n, transposed=False)
    _define(_n, transposed=True)
