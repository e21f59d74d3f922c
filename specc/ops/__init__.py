"""Layer types. Each module here defines ops with `@register`; they are discovered automatically."""

from specc.ops.base import Call, Inferred, Op, OpParams, ShapeError, TensorType
from specc.ops.registry import all_ops, get_op, register

__all__ = ["Call", "Inferred", "Op", "OpParams", "ShapeError", "TensorType", "all_ops", "get_op", "register"]
