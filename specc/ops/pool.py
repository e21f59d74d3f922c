"""Pooling: max/avg pooling over 1 or 2 spatial dims, and their adaptive forms, with PyTorch's output sizes.

Pooling counts 0 MACs (torchvision's published GFLOPs ignore it) and has no parameters.
"""

from typing import Annotated, Any

from pydantic import Field

from specc.ops.base import (
    MAX_DIM,
    Call,
    Inferred,
    Op,
    OpParams,
    ShapeError,
    TensorType,
    as_tuple,
    check_float,
    check_rank,
    kwargs_without_defaults,
)
from specc.ops.conv import _sizes
from specc.ops.registry import register


def pool_params(n: int, is_max: bool) -> type[OpParams]:
    class MaxPoolParams(OpParams):
        kernel_size: _sizes(n, 1)  # type: ignore[valid-type]
        stride: _sizes(n, 1) | None = None  # type: ignore[valid-type]
        padding: _sizes(n, 0) = 0  # type: ignore[valid-type]
        dilation: _sizes(n, 1) = 1  # type: ignore[valid-type]
        ceil_mode: bool = False

    class AvgPoolParams(OpParams):
        kernel_size: _sizes(n, 1)  # type: ignore[valid-type]
        stride: _sizes(n, 1) | None = None  # type: ignore[valid-type]
        padding: _sizes(n, 0) = 0  # type: ignore[valid-type]
        ceil_mode: bool = False
        count_include_pad: bool = True

    cls = MaxPoolParams if is_max else AvgPoolParams
    cls.__name__ = f"{'Max' if is_max else 'Avg'}Pool{n}dParams"
    return cls


def pool_output_size(size: int, k: int, s: int, pad: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's `pooling_output_shape`: the last window must start inside the input or its left padding."""
    numerator = size + 2 * pad - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = numerator // s + 1  # floor division, as PyTorch's div_rtn
    if ceil_mode and (out - 1) * s >= size + pad:
        out -= 1
    return out


class _PoolNd(Op):
    dims: int
    is_max: bool
    prefix = "pool"

    def infer(self, p: Any, inputs: list[TensorType]) -> Inferred:
        n = self.dims
        x = check_rank(inputs, n + 1, what=self.name)
        check_float(x, self.name)
        spatial = x.shape[1:]
        k = as_tuple(p.kernel_size, n)
        s = k if p.stride is None else as_tuple(p.stride, n)
        pad = as_tuple(p.padding, n)
        d = as_tuple(p.dilation, n) if self.is_max else (1,) * n
        out_sp = []
        for i in range(n):
            if pad[i] > k[i] // 2:
                raise ShapeError(
                    "E104",
                    f"padding ({pad[i]}) must be at most half the kernel size ({k[i]})",
                    field="padding",
                    hint="PyTorch refuses padding larger than kernel_size // 2",
                )
            effective = d[i] * (k[i] - 1) + 1
            padded = spatial[i] + 2 * pad[i]
            if effective > padded:
                dilated = " (dilated)" if d[i] > 1 else ""
                raise ShapeError(
                    "E202",
                    f"kernel size {effective}{dilated} is larger than the padded input size {padded}"
                    f" (input {x.describe()})",
                    field="kernel_size",
                )
            out_sp.append(pool_output_size(spatial[i], k[i], s[i], pad[i], d[i], p.ceil_mode))
        if any(o <= 0 for o in out_sp):
            raise ShapeError(
                "E202", f"output size {tuple(out_sp)} is not positive (input {x.describe()})", field="kernel_size"
            )
        return Inferred(TensorType((x.shape[0], *out_sp), x.dtype))

    def emit(self, p: Any, inputs: list[TensorType]) -> Call:
        names = ["stride", "padding"]
        names += ["dilation", "ceil_mode"] if self.is_max else ["ceil_mode", "count_include_pad"]
        kwargs = (("kernel_size", p.kernel_size), *kwargs_without_defaults(p, names))
        return Call(self.torch_name, (), kwargs)


_OutSize = Annotated[int, Field(ge=1, le=MAX_DIM)]


def adaptive_params(n: int) -> type[OpParams]:
    if n == 1:
        size_type: Any = _sizes(1, 1)
    else:
        size_type = _OutSize | Annotated[list[_OutSize | None], Field(min_length=n, max_length=n)]

    class AdaptivePoolParams(OpParams):
        output_size: size_type  # type: ignore[valid-type]

    AdaptivePoolParams.__name__ = f"AdaptivePool{n}dParams"
    return AdaptivePoolParams


class _AdaptivePoolNd(Op):
    dims: int
    prefix = "pool"

    def infer(self, p: Any, inputs: list[TensorType]) -> Inferred:
        n = self.dims
        x = check_rank(inputs, n + 1, what=self.name)
        check_float(x, self.name)
        sizes = as_tuple(p.output_size, n)
        out_sp = tuple(x.shape[1 + i] if size is None else size for i, size in enumerate(sizes))
        return Inferred(TensorType((x.shape[0], *out_sp), x.dtype))

    def emit(self, p: Any, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name, (p.output_size,))


def _define(n: int, kind: str) -> None:
    title = {"max": "Max", "avg": "Avg"}
    dims = f"{n} spatial dim{'s' if n > 1 else ''}"
    if kind.startswith("adaptive_"):
        what = kind.removeprefix("adaptive_")
        name, base = f"adaptive_{what}_pool{n}d", _AdaptivePoolNd
        torch_name = f"nn.Adaptive{title[what]}Pool{n}d"
        attrs: dict[str, Any] = {"Params": adaptive_params(n)}
        summary = (
            f"Adaptive {what} pooling over {dims} to a fixed `output_size` (a `null` entry keeps that dim)."
            if n > 1
            else f"Adaptive {what} pooling over {dims} to a fixed `output_size`."
        )
    else:
        name, base = f"{kind}_pool{n}d", _PoolNd
        torch_name = f"nn.{title[kind]}Pool{n}d"
        attrs = {"Params": pool_params(n, kind == "max"), "is_max": kind == "max"}
        summary = f"{title[kind]} pooling over {dims}; `stride` defaults to `kernel_size`."
    cls = type(
        torch_name.removeprefix("nn."),
        (base,),
        {**attrs, "name": name, "dims": n, "torch_name": torch_name, "summary": summary, "__module__": __name__},
    )
    register(cls)


for _n in (1, 2):
    for _kind in ("max", "avg", "adaptive_max", "adaptive_avg"):
        _define(_n, _kind)
