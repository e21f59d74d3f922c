"""Every registered op against PyTorch: the emitted code builds a module whose output shape, dtype and
parameter count are what shape inference says; error cases raise the documented codes; MACs match
hand computations and torch's FlopCounterMode; pooling and convolution output sizes match torch exhaustively
over small sizes.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from specc.compiler import analyze
from specc.errors import SpecErrors
from specc.ops import Inferred, Op, OpParams, ShapeError, TensorType, all_ops, get_op
from specc.ops.base import HelperClass

NAMESPACE = {"nn": torch.nn, "torch": torch, "F": F, "math": math}
TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
}
BATCH = 2
MAX_INDEX = 3  # integer inputs are drawn from [0, MAX_INDEX); embedding cases have num_embeddings >= MAX_INDEX

Shape = tuple[int, ...]
# (params, per-sample input shape, dtype); a function-kind op takes a list of shapes, and a dtype or a list of them.
Case = tuple[dict[str, Any], Shape | list[Shape], str | list[str]]

F32, F64, I64, I32, BOOL = "float32", "float64", "int64", "int32", "bool"

CASES: dict[str, list[Case]] = {
    # --- linear.py
    "linear": [
        ({"out_features": 10}, (20,), F32),
        ({"out_features": 4, "bias": False}, (3, 7), F64),
        ({"out_features": 5, "in_features": 8}, (2, 3, 8), F32),
    ],
    "identity": [({}, (3, 4), F32), ({}, (5,), I64)],
    # --- conv.py
    "conv1d": [
        ({"out_channels": 8, "kernel_size": 3}, (4, 16), F32),
        ({"out_channels": 8, "kernel_size": 4, "padding": "same", "dilation": 2}, (4, 15), F32),
        ({"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1, "padding_mode": "reflect"}, (3, 10), F32),
        ({"out_channels": 4, "kernel_size": [5], "padding": "valid", "in_channels": 2}, (2, 5), F64),
    ],
    "conv2d": [
        ({"out_channels": 6, "kernel_size": 5}, (1, 32, 32), F32),  # LeNet conv1
        ({"out_channels": 4, "kernel_size": 4, "padding": "same"}, (3, 9, 9), F32),  # even kernel, 'same'
        ({"out_channels": 4, "kernel_size": [2, 4], "padding": "same", "dilation": [1, 3]}, (3, 7, 8), F32),
        ({"out_channels": 8, "kernel_size": 3, "groups": 2, "padding": 1}, (4, 8, 8), F32),  # grouped
        ({"out_channels": 6, "kernel_size": 3, "groups": 6, "stride": 2, "bias": False}, (6, 9, 9), F32),  # depthwise
        ({"out_channels": 2, "kernel_size": 3, "dilation": [2, 3], "padding": [1, 0]}, (3, 11, 12), F32),
        ({"out_channels": 2, "kernel_size": 3, "padding": 2, "padding_mode": "circular"}, (3, 6, 6), F32),
        ({"out_channels": 64, "kernel_size": 7, "stride": 2, "padding": 3, "bias": False}, (3, 32, 32), F32),
    ],
    "conv3d": [
        ({"out_channels": 2, "kernel_size": [1, 3, 3], "stride": [1, 2, 2], "padding": [0, 1, 1]}, (3, 4, 8, 8), F32),
    ],
    "conv_transpose1d": [
        ({"out_channels": 4, "kernel_size": 3, "stride": 2, "output_padding": 1}, (2, 5), F32),
    ],
    "conv_transpose2d": [
        ({"out_channels": 4, "kernel_size": 4, "stride": 2, "padding": 1}, (8, 4, 4), F32),
        (
            {
                "out_channels": 6,
                "kernel_size": 3,
                "stride": [2, 3],
                "padding": 1,
                "output_padding": [1, 2],
                "groups": 2,
            },
            (4, 5, 5),
            F32,
        ),
        ({"out_channels": 2, "kernel_size": 3, "dilation": 2, "output_padding": 1}, (2, 4, 4), F32),
    ],
    "conv_transpose3d": [
        ({"out_channels": 2, "kernel_size": 2, "stride": 2, "bias": False}, (3, 2, 3, 4), F32),
    ],
    # --- pool.py
    "max_pool1d": [
        ({"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, (3, 6), F32),
        ({"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, (3, 5), F32),  # last-window rule bites
        ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (3, 6), F32),  # ceil adds a window
        ({"kernel_size": 3, "dilation": 2, "padding": 1}, (2, 9), F32),
        ({"kernel_size": [4]}, (2, 9), F64),
    ],
    "max_pool2d": [
        ({"kernel_size": 2, "stride": 2}, (4, 8, 8), F32),
        ({"kernel_size": 3, "stride": 2, "padding": 1}, (8, 32, 32), F32),  # ResNet stem
        ({"kernel_size": 3, "stride": 2, "ceil_mode": True}, (2, 8, 8), F32),
        ({"kernel_size": [2, 3], "dilation": 2, "padding": [1, 1]}, (2, 9, 10), F32),
        ({"kernel_size": 2}, (1, 5, 5), F32),
    ],
    "avg_pool1d": [
        ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}, (2, 6), F32),
        ({"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, (2, 5), F32),
        ({"kernel_size": 4}, (3, 9), F32),
    ],
    "avg_pool2d": [
        ({"kernel_size": 2, "stride": 2}, (4, 8, 8), F32),
        ({"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0], "ceil_mode": True}, (2, 7, 6), F32),
    ],
    "adaptive_avg_pool1d": [({"output_size": 4}, (3, 10), F32), ({"output_size": [7]}, (2, 3), F32)],
    "adaptive_avg_pool2d": [
        ({"output_size": 1}, (8, 7, 7), F32),
        ({"output_size": [None, 3]}, (2, 5, 7), F32),
        ({"output_size": [7, 7]}, (2, 5, 5), F32),
    ],
    "adaptive_max_pool1d": [({"output_size": 2}, (3, 9), F32)],
    "adaptive_max_pool2d": [({"output_size": [2, None]}, (3, 6, 5), F32), ({"output_size": [1, 1]}, (3, 4, 4), F64)],
    # --- norm.py
    "batch_norm1d": [
        ({}, (6,), F32),
        ({"affine": False, "momentum": None}, (4, 10), F32),
        ({"num_features": 4, "eps": 1e-3, "track_running_stats": False}, (4, 10), F64),
    ],
    "batch_norm2d": [({}, (6, 4, 4), F32), ({"momentum": 0.01, "affine": False}, (3, 5, 5), F32)],
    "layer_norm": [
        ({}, (10,), F32),
        ({}, (3, 7), F32),
        ({"normalized_shape": [4, 8]}, (3, 4, 8), F32),
        ({"normalized_shape": 8, "bias": False}, (5, 8), F32),
        ({"normalized_shape": [8], "eps": 1e-6}, (8,), F64),
        ({"elementwise_affine": False}, (2, 3), F32),
    ],
    "group_norm": [
        ({"num_groups": 2}, (8, 4, 4), F32),
        ({"num_groups": 3, "affine": False, "eps": 1e-6}, (6, 5), F32),
        ({"num_groups": 1, "num_channels": 4}, (4,), F32),
    ],
    # --- dropout.py
    "dropout": [({}, (10,), F32), ({"p": 0.2, "inplace": True}, (3, 4, 4), F32)],
    "dropout2d": [({"p": 0.1}, (3, 4, 4), F32)],
    # --- activation.py
    "relu": [({}, (4,), F32), ({"inplace": True}, (3, 5, 5), F32)],
    "leaky_relu": [({"negative_slope": 0.2}, (4,), F32), ({"inplace": True}, (2, 3), F64)],
    "elu": [({"alpha": 0.5}, (3, 4), F32)],
    "gelu": [({"approximate": "tanh"}, (5,), F32), ({}, (5,), F64)],
    "silu": [({}, (6,), F32), ({"inplace": True}, (2, 2), F32)],
    "sigmoid": [({}, (3, 2), F32)],
    "tanh": [({}, (3, 2), "bfloat16")],
    "softmax": [({}, (10,), F32), ({"dim": 1}, (3, 4), F32), ({"dim": -2}, (3, 4), F32)],
    "log_softmax": [({}, (10,), F32), ({"dim": 2}, (3, 4), F64)],
    # --- reshape.py
    "flatten": [
        ({}, (16, 5, 5), F32),
        ({"start_dim": 2}, (3, 4, 5), F32),
        ({"start_dim": 1, "end_dim": 2}, (3, 4, 5), F32),
        ({"end_dim": -2}, (3, 4, 5), F32),
        ({"start_dim": -1}, (3, 4), I64),
    ],
    "unflatten": [
        ({"dim": 1, "sizes": [16, 5, 5]}, (400,), F32),
        ({"dim": -1, "sizes": [2, -1]}, (3, 8), F32),
        ({"dim": 2, "sizes": [1, 4]}, (3, 4, 5), F32),
    ],
    # --- embedding.py
    "embedding": [
        ({"num_embeddings": 10, "embedding_dim": 4}, (7,), I64),
        ({"num_embeddings": 5, "embedding_dim": 3, "padding_idx": 0, "max_norm": 1.0}, (2, 3), I32),
        (
            {"num_embeddings": 4, "embedding_dim": 2, "padding_idx": -1, "sparse": True, "scale_grad_by_freq": True},
            (),
            I64,
        ),
    ],
    # --- merge.py
    "add": [
        ({}, [(3, 4), (3, 4)], F32),
        ({}, [(3, 1, 5), (1, 4, 5), (3, 4, 1)], F32),
        ({}, [(4,), (4,)], [F32, F64]),
        ({}, [(4,), (4,)], [I32, F32]),
    ],
    "mul": [({}, [(8, 4, 4), (8, 1, 1)], F32), ({}, [(3,), (3,)], [F32, I64])],
    "concat": [
        ({}, [(3, 4, 4), (5, 4, 4)], F32),
        ({"dim": -1}, [(3, 2), (3, 5), (3, 1)], F32),
        ({"dim": 2}, [(2, 3, 4), (2, 1, 4)], F64),
        ({}, [(2,), (3,)], ["float16", "bfloat16"]),
    ],
    # --- tensor.py
    "permute": [
        ({"dims": [0, 2, 1]}, (3, 4), F32),
        ({"dims": [0, 3, 1, 2]}, (4, 5, 6), F32),
        ({"dims": [0, -1, 1]}, (2, 3), I64),
    ],
    "transpose": [({"dim0": 1, "dim1": 2}, (3, 4, 5), F32), ({"dim0": -1, "dim1": 1}, (3, 4), F32)],
    "reshape": [
        ({"shape": [14, 14]}, (196,), F32),
        ({"shape": [-1, 4]}, (3, 8), F32),
        ({"shape": [24]}, (2, 3, 4), I64),
    ],
    "view": [({"shape": [2, -1]}, (8,), F32), ({"shape": [3, 2, 2]}, (3, 4), F32)],
    "select": [
        ({"dim": 1, "index": 0}, (197, 8), F32),
        ({"dim": -1, "index": -1}, (3, 4), F32),
        ({"dim": 2, "index": 1}, (2, 3, 4), I64),
    ],
    "slice": [
        ({"dim": 1, "start": 1}, (5, 4), F32),
        ({"dim": -1, "end": -1, "step": 2}, (3, 6), F32),
        ({"dim": 2, "start": 1, "end": 3}, (2, 4, 5), F32),
    ],
    "chunk": [
        ({"chunks": 3, "dim": -1, "index": 0}, (4, 24), F32),
        ({"chunks": 3, "dim": 1, "index": 2}, (7, 2), F32),  # pieces of 3, 3, 1
        ({"chunks": 4, "dim": -1, "index": -1}, (2, 6), F32),  # only 3 pieces of 2
    ],
    "split": [
        ({"split_size": 4, "dim": -1, "index": 2}, (3, 10), F32),
        ({"split_size": [2, 3], "dim": 1, "index": 1}, (5, 2), F32),
    ],
    "expand": [
        ({}, [(1, 4), (3, 4)], F32),
        ({"sizes": [3, -1]}, (1, 4), F32),
        ({"sizes": [-1, 5]}, [(2, 1), (7,)], F32),
    ],
    # --- parameter.py (no inputs)
    "parameter": [
        ({"shape": [1, 8]}, [], F32),
        ({"shape": [5, 4], "init": "normal", "std": 0.02}, [], F32),
        ({"shape": [3], "init": "trunc_normal", "mean": 0.5, "std": 0.1, "requires_grad": False}, [], F32),
        ({"shape": [2, 2], "init": "ones"}, [], F32),
    ],
    # --- positional.py
    "positional_encoding": [({}, (6, 8), F32), ({"max_len": 100}, (5, 4), F64)],
    "positional_embedding": [({}, (6, 8), F32), ({"max_len": 16, "embedding_dim": 4}, (5, 4), F32)],
    # --- attention.py (a mask is the last input; its parameter names a node, unused here)
    "multihead_attention": [
        ({"num_heads": 2}, (5, 8), F32),
        ({"num_heads": 2, "causal": True, "dropout": 0.1}, (5, 8), F32),
        ({"num_heads": 4, "bias": False, "add_bias_kv": True, "add_zero_attn": True}, [(3, 8), (6, 8)], F32),
        ({"num_heads": 1, "key_padding_mask": "m"}, [(4, 6), (5, 10), (5, 12), (5,)], [F32, F32, F32, BOOL]),
        ({"num_heads": 2, "causal": True, "key_padding_mask": "m"}, [(4, 6), (4,)], [F32, BOOL]),
    ],
    "scaled_dot_product_attention": [
        ({}, [(2, 5, 8), (2, 6, 8), (2, 6, 4)], F32),
        ({"is_causal": True, "dropout_p": 0.1, "scale": 0.5}, [(3, 4, 4)] * 3, F32),
        ({"attn_mask": "m"}, [(2, 5, 8), (2, 6, 8), (2, 6, 8), (1, 5, 6)], [F32, F32, F32, BOOL]),
        ({"attn_mask": "m"}, [(2, 5, 8), (2, 6, 8), (2, 6, 8), (2, 5, 6)], [F32, F32, F32, BOOL]),
        ({"attn_mask": "m"}, [(4, 8), (4, 8), (4, 8), (4, 4)], F32),  # a float mask is added
        ({"key_padding_mask": "m", "is_causal": True}, [(2, 5, 8)] * 3 + [(5,)], [F32] * 3 + [BOOL]),
        ({"attn_mask": "m", "key_padding_mask": "n"}, [(4, 8)] * 3 + [(4, 4), (4,)], [F32] * 3 + [BOOL, BOOL]),
    ],
    # --- transformer.py
    "transformer_encoder_layer": [
        ({"nhead": 2, "dim_feedforward": 16}, (5, 8), F32),
        (
            {
                "nhead": 2,
                "dim_feedforward": 16,
                "norm_first": True,
                "activation": "gelu",
                "dropout": 0.0,
                "causal": True,
                "bias": False,
                "layer_norm_eps": 1e-6,
            },
            (5, 8),
            F32,
        ),
        ({"nhead": 4, "dim_feedforward": 8, "key_padding_mask": "m"}, [(3, 8), (3,)], [F32, BOOL]),
    ],
    "transformer_encoder": [
        ({"nhead": 2, "num_layers": 2, "dim_feedforward": 16, "norm": True}, (5, 8), F32),
        (
            {"nhead": 1, "num_layers": 1, "dim_feedforward": 8, "causal": True, "key_padding_mask": "m"},
            [(4, 6), (4,)],
            [F32, BOOL],
        ),
        (
            {"nhead": 2, "num_layers": 2, "dim_feedforward": 8, "norm_first": True, "norm": True, "bias": False},
            (3, 4),
            F32,
        ),
    ],
    "transformer_decoder_layer": [
        ({"nhead": 2, "dim_feedforward": 16}, [(5, 8), (7, 8)], F32),
        (
            {
                "nhead": 2,
                "dim_feedforward": 16,
                "causal": True,
                "key_padding_mask": "m",
                "memory_key_padding_mask": "n",
            },
            [(5, 8), (7, 8), (5,), (7,)],
            [F32, F32, BOOL, BOOL],
        ),
    ],
    "transformer_decoder": [
        ({"nhead": 2, "num_layers": 2, "dim_feedforward": 16, "norm": True}, [(5, 8), (7, 8)], F32),
        (
            {
                "nhead": 2,
                "num_layers": 1,
                "dim_feedforward": 8,
                "causal": True,
                "memory_key_padding_mask": "n",
                "bias": False,
            },
            [(3, 4), (6, 4), (6,)],
            [F32, F32, BOOL],
        ),
    ],
    "transformer": [
        ({"nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 2, "dim_feedforward": 16}, [(6, 8), (5, 8)], F32),
        (
            {
                "nhead": 2,
                "num_encoder_layers": 1,
                "num_decoder_layers": 1,
                "dim_feedforward": 8,
                "causal": True,
                "src_key_padding_mask": "a",
                "tgt_key_padding_mask": "b",
                "memory_key_padding_mask": "c",
            },
            [(6, 4), (5, 4), (6,), (5,), (6,)],
            [F32, F32, BOOL, BOOL, BOOL],
        ),
    ],
}


def _normalize(case: Case) -> tuple[dict[str, Any], list[Shape], list[str]]:
    params, shapes, dtypes = case
    shapes = list(shapes) if isinstance(shapes, list) else [shapes]
    dtypes = list(dtypes) if isinstance(dtypes, list) else [dtypes] * len(shapes)
    return params, shapes, dtypes


def _call_id(name: str, params: dict[str, Any]) -> str:
    args = ",".join(f"{k}={v}" for k, v in params.items()).replace(" ", "")
    return f"{name}({args})"


def _case_id(name: str, case: Case) -> str:
    params, shapes, dtypes = _normalize(case)
    ins = "+".join("x".join(map(str, s)) or "scalar" for s in shapes)
    kinds = "" if set(dtypes) == {F32} else "-" + "+".join(dtypes)
    return f"{_call_id(name, params)}-{ins}{kinds}"


ALL_CASES = [pytest.param(name, case, id=_case_id(name, case)) for name, cases in CASES.items() for case in cases]


def _infer(
    name: str, params: dict[str, Any], shapes: list[Shape], dtypes: list[str]
) -> tuple[Op, OpParams, list[TensorType], Inferred]:
    op = get_op(name)
    assert op is not None, f"no op {name}"
    p = op.Params.model_validate(params)
    inputs = [TensorType(tuple(s), d) for s, d in zip(shapes, dtypes, strict=True)]
    return op, p, inputs, op.infer(p, inputs)


def _tensor(shape: Shape, dtype: str, batch: int = BATCH) -> torch.Tensor:
    if dtype in ("int64", "int32"):
        return torch.randint(0, MAX_INDEX, (batch, *shape), dtype=TORCH_DTYPES[dtype])
    if dtype == "bool":
        return torch.rand(batch, *shape) < 0.3  # a padding mask: True marks padding
    return torch.randn((batch, *shape), dtype=TORCH_DTYPES[dtype])


ARGS = ["a", "b", "c", "d", "e"]  # the input variables of the code under test


class _Self:
    """`self` for code that forward runs (e.g. `dropout_p=0.1 if self.training else 0.0`)."""

    training = False


def _helper_source(helper: HelperClass) -> str:
    """A helper class's code, as model.py prints it (less its comments and type hints)."""
    lines = [
        f"class {helper.name}(nn.Module):",
        f"    def __init__(self, {', '.join(p.split(':')[0] for p in helper.init_params)}):",
        "        super().__init__()",
        *(f"        {line}" for line in helper.init_lines),
        "    def forward(self, x):",
        *(f"        {line}" for line in helper.forward_lines),
        f"        return {helper.output}",
    ]
    return "\n".join(lines) + "\n"


def _build(op: Op, p: OpParams, inputs: list[TensorType]) -> tuple[Any, str]:
    """The torch module (kind "module") or parameter (kind "parameter") or None, and the code evaluated
    in forward (the module's call, or the function's expression)."""
    args = ARGS[: len(inputs)]
    if op.kind == "function":
        return None, op.forward_code(p, inputs, args)
    namespace = dict(NAMESPACE)
    for helper in op.helpers(p):
        exec(_helper_source(helper), namespace)  # our own generated code
    module = eval(op.emit(p, inputs).render(), namespace)  # our own generated code
    return module, op.module_call(p, inputs, "module", args) if op.kind == "module" else "module"


def _run(
    op: Op, p: OpParams, inputs: list[TensorType], tensors: list[torch.Tensor]
) -> tuple[torch.Tensor, dict[str, tuple[int, ...]]]:
    """The output and the named parameters' shapes (a parameter op's own tensor is named "")."""
    module, code = _build(op, p, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the emitted code must not rely on deprecated or implicit behaviour
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")  # performance only
        namespace = {**NAMESPACE, **dict(zip(ARGS, tensors, strict=False)), "self": _Self(), "module": module}
        if module is None:
            return eval(code, namespace), {}
        if op.kind == "parameter":
            return module, {"": tuple(module.shape)}
        if inputs[0].dtype in ("float64", "float16", "bfloat16"):
            module = namespace["module"] = module.to(TORCH_DTYPES[inputs[0].dtype])
        named = {name: tuple(t.shape) for name, t in module.named_parameters()}
        return eval(code, namespace), named


def test_every_op_has_cases() -> None:
    assert set(CASES) == set(all_ops())


@pytest.mark.parametrize("name,case", ALL_CASES)
def test_op_matches_torch(name: str, case: Case) -> None:
    params, shapes, dtypes = _normalize(case)
    op, p, inputs, inferred = _infer(name, params, shapes, dtypes)
    torch.manual_seed(0)
    out, shapes_seen = _run(op, p, inputs, [_tensor(s, d) for s, d in zip(shapes, dtypes, strict=True)])
    named = {name: math.prod(shape) for name, shape in shapes_seen.items()}
    assert tuple(out.shape) == (1 if inferred.out.broadcast else BATCH, *inferred.out.shape)
    assert out.dtype == TORCH_DTYPES[inferred.out.dtype]
    assert inferred.params == sum(named.values())
    assert inferred.parameters() == named
    for name, shape in inferred.shapes:
        assert shapes_seen[name] == shape, name
    assert inferred.macs >= 0
    if inferred.out.contiguous and op.kind == "function":
        assert out.is_contiguous()


@pytest.mark.parametrize("name", sorted(all_ops()))
def test_op_contract(name: str) -> None:
    op = get_op(name)
    assert op is not None and op.name == name and op.summary and op.prefix.isidentifier()
    assert op.torch_name.startswith(("nn.", "torch."))
    assert issubclass(op.Params, OpParams)
    assert op.Params.model_config.get("extra") == "forbid" and op.Params.model_config.get("strict") is True
    assert set(op.inferred_params) <= set(op.Params.model_fields)
    for field in op.inferred_params:
        assert op.Params.model_fields[field].default is None, f"inferred {field} must be optional"
    assert (op.min_inputs >= 1 or op.kind == "parameter") and (op.max_inputs is None or op.max_inputs >= op.min_inputs)
    for field in op.ref_params:
        assert op.Params.model_fields[field].default is None, f"reference parameter {field} must be optional"


def test_compiler_does_not_import_torch() -> None:
    code = "import sys, specc.ops; specc.ops.all_ops(); sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- what the generated code looks like

EMITTED = [
    ("linear", {"out_features": 120}, [(400,)], "nn.Linear(400, 120)"),
    ("conv2d", {"out_channels": 6, "kernel_size": 5}, [(1, 32, 32)], "nn.Conv2d(1, 6, kernel_size=5)"),
    ("max_pool2d", {"kernel_size": 2, "stride": 2}, [(6, 28, 28)], "nn.MaxPool2d(kernel_size=2, stride=2)"),
    ("max_pool2d", {"kernel_size": 3, "ceil_mode": True}, [(6, 28, 28)], "nn.MaxPool2d(kernel_size=3, ceil_mode=True)"),
    (
        "avg_pool1d",
        {"kernel_size": [2], "count_include_pad": False},
        [(6, 8)],
        "nn.AvgPool1d(kernel_size=(2,), count_include_pad=False)",
    ),
    ("adaptive_avg_pool2d", {"output_size": [1, 1]}, [(512, 7, 7)], "nn.AdaptiveAvgPool2d((1, 1))"),
    ("adaptive_max_pool2d", {"output_size": [None, 3]}, [(5, 7, 7)], "nn.AdaptiveMaxPool2d((None, 3))"),
    ("batch_norm2d", {}, [(64, 8, 8)], "nn.BatchNorm2d(64)"),
    ("batch_norm1d", {"eps": 1e-3, "momentum": None}, [(16,)], "nn.BatchNorm1d(16, eps=0.001, momentum=None)"),
    ("layer_norm", {}, [(3, 8)], "nn.LayerNorm(8)"),
    ("layer_norm", {"normalized_shape": [4, 8]}, [(3, 4, 8)], "nn.LayerNorm((4, 8))"),
    ("layer_norm", {"normalized_shape": [8], "bias": False}, [(3, 8)], "nn.LayerNorm(8, bias=False)"),
    ("group_norm", {"num_groups": 32}, [(64, 8, 8)], "nn.GroupNorm(32, 64)"),
    ("dropout", {}, [(10,)], "nn.Dropout()"),
    ("dropout", {"p": 0.2}, [(10,)], "nn.Dropout(p=0.2)"),
    ("relu", {}, [(10,)], "nn.ReLU()"),
    ("relu", {"inplace": True}, [(10,)], "nn.ReLU(inplace=True)"),
    ("relu", {"inplace": False}, [(10,)], "nn.ReLU()"),
    ("gelu", {"approximate": "tanh"}, [(10,)], "nn.GELU(approximate='tanh')"),
    ("softmax", {}, [(10,)], "nn.Softmax(dim=-1)"),
    ("log_softmax", {"dim": 1}, [(10,)], "nn.LogSoftmax(dim=1)"),
    ("flatten", {}, [(16, 5, 5)], "nn.Flatten()"),
    ("flatten", {"start_dim": 2}, [(16, 5, 5)], "nn.Flatten(start_dim=2)"),
    ("unflatten", {"dim": 1, "sizes": [16, 5, 5]}, [(400,)], "nn.Unflatten(1, (16, 5, 5))"),
    (
        "embedding",
        {"num_embeddings": 10, "embedding_dim": 4, "padding_idx": 0},
        [(7,)],
        "nn.Embedding(10, 4, padding_idx=0)",
    ),
    ("multihead_attention", {"num_heads": 12}, [(197, 768)], "nn.MultiheadAttention(768, 12, batch_first=True)"),
    (
        "multihead_attention",
        {"num_heads": 2, "dropout": 0.1, "bias": False},
        [(5, 8), (6, 4)],
        "nn.MultiheadAttention(8, 2, dropout=0.1, bias=False, kdim=4, vdim=4, batch_first=True)",
    ),
    (
        "transformer_encoder",
        {"nhead": 8, "num_layers": 6, "norm": True},
        [(10, 512)],
        "nn.TransformerEncoder(nn.TransformerEncoderLayer(512, 8, batch_first=True), 6, norm=nn.LayerNorm(512))",
    ),
    (
        "transformer_encoder",
        {"nhead": 4, "num_layers": 2, "norm_first": True, "dim_feedforward": 64, "activation": "gelu"},
        [(10, 32)],
        "nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, activation='gelu',"
        " batch_first=True, norm_first=True), 2, enable_nested_tensor=False)",
    ),
    (
        "transformer",
        {"num_decoder_layers": 2, "layer_norm_eps": 1e-6},
        [(10, 512), (9, 512)],
        "nn.Transformer(d_model=512, nhead=8, num_decoder_layers=2, layer_norm_eps=1e-06, batch_first=True)",
    ),
    ("parameter", {"shape": [1, 768]}, [], "nn.Parameter(torch.zeros(1, 1, 768))"),
    (
        "parameter",
        {"shape": [197, 768], "init": "normal", "std": 0.02},
        [],
        "nn.Parameter(torch.empty(1, 197, 768).normal_(std=0.02))",
    ),
    (
        "parameter",
        {"shape": [4], "init": "trunc_normal", "std": 0.02, "requires_grad": False},
        [],
        "nn.Parameter(nn.init.trunc_normal_(torch.empty(1, 4), std=0.02), requires_grad=False)",
    ),
    ("positional_encoding", {}, [(10, 512)], "SinusoidalPositionalEncoding(512, 10)"),
    ("positional_embedding", {"max_len": 256}, [(10, 64)], "nn.Embedding(256, 64)"),
]


@pytest.mark.parametrize("name,params,shapes,expected", EMITTED, ids=[_call_id(e[0], e[1]) for e in EMITTED])
def test_emitted_code(name: str, params: dict[str, Any], shapes: list[Shape], expected: str) -> None:
    dtype = I64 if name == "embedding" else F32
    op, p, inputs, _ = _infer(name, params, shapes, [dtype] * len(shapes))
    assert op.emit(p, inputs).render() == expected


@pytest.mark.parametrize(
    "name,params,args,expected",
    [
        ("add", {}, ["a", "b", "c"], "a + b + c"),
        ("mul", {}, ["a", "b"], "a * b"),
        ("concat", {}, ["a", "b"], "torch.cat((a, b), dim=1)"),
        ("concat", {"dim": -1}, ["x1", "x2", "x3"], "torch.cat((x1, x2, x3), dim=-1)"),
        ("permute", {"dims": [0, 2, 1]}, ["x"], "x.permute(0, 2, 1)"),
        ("transpose", {"dim0": 1, "dim1": -1}, ["x"], "x.transpose(1, -1)"),
        ("reshape", {"shape": [2, -1]}, ["x"], "x.reshape(x.shape[0], 2, -1)"),
        ("view", {"shape": [12]}, ["x"], "x.view(x.shape[0], 12)"),
        ("select", {"dim": 1, "index": 0}, ["x"], "x[:, 0]"),
        ("select", {"dim": -1, "index": -1}, ["x"], "x[:, :, -1]"),
        ("slice", {"dim": 1, "start": 1}, ["x"], "x[:, 1:]"),
        ("slice", {"dim": 2, "end": 3, "step": 2}, ["x"], "x[:, :, :3:2]"),
        ("chunk", {"chunks": 2, "dim": -1, "index": 1}, ["x"], "x.chunk(2, dim=-1)[1]"),
        ("split", {"split_size": [1, 3], "dim": -1, "index": 0}, ["x"], "x.split((1, 3), dim=-1)[0]"),
        ("expand", {}, ["token", "x"], "token.expand(x.shape[0], -1, -1)"),
        ("expand", {"sizes": [3, 4]}, ["x"], "x.expand(-1, 3, 4)"),
        ("scaled_dot_product_attention", {}, ["q", "k", "v"], "F.scaled_dot_product_attention(q, k, v)"),
        (
            "scaled_dot_product_attention",
            {"is_causal": True, "dropout_p": 0.1},
            ["q", "k", "v"],
            "F.scaled_dot_product_attention(q, k, v, dropout_p=0.1 if self.training else 0.0, is_causal=True)",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and value.isidentifier() else None,
)
def test_forward_code(name: str, params: dict[str, Any], args: list[str], expected: str) -> None:
    shapes = [(1, 4)] * len(args) if name == "expand" else [(3, 4)] * len(args)
    op, p, inputs, _ = _infer(name, params, shapes, [F32] * len(args))
    assert op.forward_code(p, inputs, args) == expected


@pytest.mark.parametrize(
    "name,params,shapes,dtypes,args,expected",
    [
        ("linear", {"out_features": 4}, [(3,)], [F32], ["x"], "self.fc(x)"),
        (
            "multihead_attention",
            {"num_heads": 2},
            [(5, 8)],
            [F32],
            ["x"],
            "self.fc(x, x, x, need_weights=False)[0]",
        ),
        (
            "multihead_attention",
            {"num_heads": 2, "key_padding_mask": "pad"},
            [(5, 8), (7, 8), (7,)],
            [F32, F32, BOOL],
            ["x", "memory", "pad"],
            "self.fc(x, memory, memory, key_padding_mask=pad, need_weights=False)[0]",
        ),
        (
            "multihead_attention",
            {"num_heads": 2, "causal": True},
            [(5, 8)],
            [F32],
            ["x"],
            "self.fc(x, x, x, need_weights=False, attn_mask=torch.ones(x.shape[1], x.shape[1], dtype=torch.bool,"
            " device=x.device).triu(1), is_causal=True)[0]",
        ),
        (
            "positional_embedding",
            {},
            [(5, 8)],
            [F32],
            ["x"],
            "x + self.fc(torch.arange(x.shape[1], device=x.device))",
        ),
        (
            "transformer_decoder",
            {"nhead": 2, "num_layers": 1, "memory_key_padding_mask": "pad"},
            [(5, 8), (7, 8), (7,)],
            [F32, F32, BOOL],
            ["tgt", "memory", "pad"],
            "self.fc(tgt, memory, memory_key_padding_mask=pad)",
        ),
    ],
    ids=["plain", "mha-self", "mha-cross-masked", "mha-causal", "positional_embedding", "decoder-memory-mask"],
)
def test_module_call(
    name: str, params: dict[str, Any], shapes: list[Shape], dtypes: list[str], args: list[str], expected: str
) -> None:
    op, p, inputs, _ = _infer(name, params, shapes, dtypes)
    assert op.module_call(p, inputs, "self.fc", args) == expected


# --- shape errors

# (op, params, input shapes, dtype, code, field)
ERRORS: list[tuple[str, dict[str, Any], list[Shape], str, str, str | None]] = [
    # E201: a declared size disagrees
    ("linear", {"out_features": 4, "in_features": 5}, [(6,)], F32, "E201", "in_features"),
    ("conv2d", {"out_channels": 4, "kernel_size": 3, "in_channels": 1}, [(3, 8, 8)], F32, "E201", "in_channels"),
    ("batch_norm2d", {"num_features": 8}, [(4, 2, 2)], F32, "E201", "num_features"),
    ("batch_norm1d", {"num_features": 8}, [(4,)], F32, "E201", "num_features"),
    ("group_norm", {"num_groups": 2, "num_channels": 6}, [(4, 2)], F32, "E201", "num_channels"),
    ("layer_norm", {"normalized_shape": 5}, [(3, 4)], F32, "E201", "normalized_shape"),
    ("layer_norm", {"normalized_shape": [2, 3, 4]}, [(3, 4)], F32, "E201", "normalized_shape"),
    # E202: impossible shapes
    ("conv2d", {"out_channels": 4, "kernel_size": 5}, [(1, 4, 4)], F32, "E202", "kernel_size"),
    ("conv2d", {"out_channels": 4, "kernel_size": 3, "groups": 3}, [(6, 8, 8)], F32, "E202", "groups"),
    (
        "conv_transpose2d",
        {"out_channels": 2, "kernel_size": 3, "stride": 2, "output_padding": 2},
        [(2, 4, 4)],
        F32,
        "E202",
        "output_padding",
    ),
    ("max_pool2d", {"kernel_size": 3}, [(1, 2, 2)], F32, "E202", "kernel_size"),
    ("max_pool1d", {"kernel_size": 3, "dilation": 2}, [(1, 4)], F32, "E202", "kernel_size"),
    # Stricter than torch, on purpose: in ceil mode torch lets a window larger than the whole input through.
    ("avg_pool1d", {"kernel_size": 4, "stride": 2, "ceil_mode": True}, [(1, 3)], F32, "E202", "kernel_size"),
    ("group_norm", {"num_groups": 4}, [(6, 3)], F32, "E202", "num_groups"),
    ("unflatten", {"dim": 1, "sizes": [3, 3]}, [(10,)], F32, "E202", "sizes"),
    ("unflatten", {"dim": 1, "sizes": [3, -1]}, [(10,)], F32, "E202", "sizes"),
    # E203: wrong rank
    ("conv2d", {"out_channels": 4, "kernel_size": 3}, [(3, 8)], F32, "E203", None),
    ("conv1d", {"out_channels": 4, "kernel_size": 3}, [(3, 8, 8)], F32, "E203", None),
    ("max_pool2d", {"kernel_size": 2}, [(3, 8)], F32, "E203", None),
    ("adaptive_avg_pool2d", {"output_size": 1}, [(3, 8)], F32, "E203", None),
    ("batch_norm2d", {}, [(3, 8)], F32, "E203", None),
    ("batch_norm1d", {}, [(3, 4, 4)], F32, "E203", None),
    ("dropout2d", {}, [(3, 8)], F32, "E203", None),
    ("linear", {"out_features": 2}, [()], F32, "E203", None),
    ("layer_norm", {}, [()], F32, "E203", None),
    ("group_norm", {"num_groups": 1}, [()], F32, "E203", None),
    # E204: merge shapes incompatible
    ("add", {}, [(3, 4), (3, 5)], F32, "E204", None),
    ("add", {}, [(3, 4), (4,)], F32, "E204", None),
    ("mul", {}, [(2, 3), (3, 3)], F32, "E204", None),
    ("add", {}, [(2, 3), (2, 3), (2, 4)], F32, "E204", None),
    ("concat", {}, [(3, 4), (3, 5)], F32, "E204", None),
    ("concat", {"dim": 2}, [(3, 4), (2, 5)], F32, "E204", None),
    ("concat", {}, [(3, 4), (3, 4, 1)], F32, "E204", None),
    # E205: wrong dtype
    ("embedding", {"num_embeddings": 4, "embedding_dim": 2}, [(5,)], F32, "E205", None),
    ("relu", {}, [(4,)], I64, "E205", None),
    ("softmax", {}, [(4,)], I64, "E205", None),
    ("conv2d", {"out_channels": 4, "kernel_size": 3}, [(3, 8, 8)], I64, "E205", None),
    ("max_pool2d", {"kernel_size": 2}, [(1, 4, 4)], I64, "E205", None),
    ("batch_norm1d", {}, [(4,)], I32, "E205", None),
    ("dropout", {}, [(4,)], "bool", "E205", None),
    # E104: value out of range
    ("max_pool2d", {"kernel_size": 2, "padding": 2}, [(1, 8, 8)], F32, "E104", "padding"),
    ("avg_pool1d", {"kernel_size": 3, "padding": 2}, [(1, 8)], F32, "E104", "padding"),
    (
        "conv2d",
        {"out_channels": 2, "kernel_size": 3, "stride": 2, "padding": "same"},
        [(1, 8, 8)],
        F32,
        "E104",
        "padding",
    ),
    ("softmax", {"dim": 2}, [(4,)], F32, "E104", "dim"),
    ("log_softmax", {"dim": -3}, [(4,)], F32, "E104", "dim"),
    ("flatten", {"start_dim": 0}, [(3, 4)], F32, "E104", "start_dim"),
    ("flatten", {"start_dim": 3}, [(3, 4)], F32, "E104", "start_dim"),
    ("flatten", {"start_dim": 2, "end_dim": 1}, [(3, 4)], F32, "E104", "end_dim"),
    ("flatten", {}, [()], F32, "E104", "start_dim"),
    ("unflatten", {"dim": 0, "sizes": [1, 2]}, [(2,)], F32, "E104", "dim"),
    ("unflatten", {"dim": 1, "sizes": [-1, -1]}, [(4,)], F32, "E104", "sizes"),
    ("concat", {"dim": 0}, [(3, 4), (3, 4)], F32, "E104", "dim"),
    ("concat", {"dim": -4}, [(3, 4), (3, 4)], F32, "E104", "dim"),
    ("embedding", {"num_embeddings": 4, "embedding_dim": 2, "padding_idx": 4}, [(3,)], I64, "E104", "padding_idx"),
    # tensor.py
    ("permute", {"dims": [1, 0, 2]}, [(3, 4)], F32, "E104", "dims"),
    ("permute", {"dims": [0, 1]}, [(3, 4)], F32, "E104", "dims"),
    ("permute", {"dims": [0, 1, 1]}, [(3, 4)], F32, "E104", "dims"),
    ("transpose", {"dim0": 0, "dim1": 1}, [(3, 4)], F32, "E104", "dim0"),
    ("reshape", {"shape": [5]}, [(3, 4)], F32, "E202", "shape"),
    ("reshape", {"shape": [-1, -1]}, [(3, 4)], F32, "E104", "shape"),
    ("view", {"shape": [5, -1]}, [(3, 4)], F32, "E202", "shape"),
    ("select", {"dim": 1, "index": 3}, [(3, 4)], F32, "E104", "index"),
    ("select", {"dim": 0, "index": 0}, [(3, 4)], F32, "E104", "dim"),
    ("slice", {"dim": 1, "start": 4}, [(3,)], F32, "E202", "start"),
    ("chunk", {"chunks": 4, "dim": -1, "index": 3}, [(6,)], F32, "E104", "index"),
    ("split", {"split_size": [2, 2], "dim": -1, "index": 0}, [(5,)], F32, "E202", "split_size"),
    ("expand", {"sizes": [3, 4]}, [(2, 4)], F32, "E202", "sizes"),
    ("expand", {"sizes": [3]}, [(1, 4)], F32, "E104", "sizes"),
    # attention.py, transformer.py, positional.py
    ("multihead_attention", {"num_heads": 3}, [(5, 8)], F32, "E202", "num_heads"),
    ("multihead_attention", {"num_heads": 2}, [(5, 8, 2)], F32, "E203", None),
    ("multihead_attention", {"num_heads": 2}, [(8,)], F32, "E203", None),
    ("multihead_attention", {"num_heads": 2, "causal": True}, [(5, 8), (6, 8)], F32, "E204", "causal"),
    ("multihead_attention", {"num_heads": 2}, [(5, 8), (6, 8), (7, 8)], F32, "E204", None),
    ("multihead_attention", {"num_heads": 2, "key_padding_mask": "m"}, [(5, 8), (4,)], F32, "E204", "key_padding_mask"),
    ("multihead_attention", {"num_heads": 2, "key_padding_mask": "m"}, [(5, 8), (5,)], F32, "E205", "key_padding_mask"),
    ("multihead_attention", {"num_heads": 2}, [(5, 8)], I64, "E205", None),
    ("scaled_dot_product_attention", {}, [(2, 5, 8), (2, 6, 4), (2, 6, 8)], F32, "E204", None),
    ("scaled_dot_product_attention", {}, [(2, 5, 8), (2, 6, 8), (2, 7, 8)], F32, "E204", None),
    ("scaled_dot_product_attention", {}, [(2, 5, 8), (3, 6, 8), (3, 6, 8)], F32, "E204", None),
    ("scaled_dot_product_attention", {}, [(8,), (8,), (8,)], F32, "E203", None),
    ("scaled_dot_product_attention", {"attn_mask": "m"}, [(5, 8), (6, 8), (6, 8), (5, 5)], F32, "E204", "attn_mask"),
    # a per-sample mask with fewer dims than the weights: its batch dim would meet another dim
    (
        "scaled_dot_product_attention",
        {"attn_mask": "m"},
        [(2, 5, 8), (2, 6, 8), (2, 6, 8), (5, 6)],
        F32,
        "E204",
        "attn_mask",
    ),
    ("scaled_dot_product_attention", {"attn_mask": "m"}, [(4, 8), (4, 8), (4, 8), (4,)], F32, "E204", "attn_mask"),
    ("scaled_dot_product_attention", {"attn_mask": "m"}, [(4, 8), (4, 8), (4, 8), ()], F32, "E204", "attn_mask"),
    # norm.py: a group of one value per sample normalizes to 0 (torch refuses it at batch 1)
    ("group_norm", {"num_groups": 4}, [(4,)], F32, "E202", "num_groups"),
    ("group_norm", {"num_groups": 3}, [(3, 1, 1)], F32, "E202", "num_groups"),
    ("transformer_encoder_layer", {"nhead": 3}, [(5, 8)], F32, "E202", "nhead"),
    ("transformer_encoder", {"nhead": 2, "num_layers": 1, "d_model": 6}, [(5, 8)], F32, "E201", "d_model"),
    ("transformer_decoder_layer", {"nhead": 2}, [(5, 8), (5, 6)], F32, "E204", None),
    ("transformer", {}, [(5, 512), (5, 256)], F32, "E204", None),
    ("positional_encoding", {}, [(5, 7)], F32, "E202", None),
    ("positional_encoding", {}, [(5,)], F32, "E203", None),
    ("positional_embedding", {"max_len": 4}, [(5, 8)], F32, "E202", "max_len"),
]


@pytest.mark.parametrize(
    "name,params,shapes,dtype,code,field", ERRORS, ids=[f"{e[4]}-{_case_id(e[0], (e[1], e[2], e[3]))}" for e in ERRORS]
)
def test_shape_errors(
    name: str, params: dict[str, Any], shapes: list[Shape], dtype: str, code: str, field: str | None
) -> None:
    with pytest.raises(ShapeError) as info:
        _infer(name, params, shapes, [dtype] * len(shapes))
    assert (info.value.code, info.value.field) == (code, field), info.value.message


def test_merge_error_names_both_shapes() -> None:
    with pytest.raises(ShapeError) as info:
        _infer("add", {}, [(3, 4), (3, 5)], [F32, F32])
    assert "(B, 3, 4)" in info.value.message and "(B, 3, 5)" in info.value.message


def test_declared_size_error_has_hint() -> None:
    with pytest.raises(ShapeError) as info:
        _infer("linear", {"out_features": 4, "in_features": 5}, [(2, 3)], [F32])
    assert info.value.hint and "6 features" in info.value.message


def test_concat_refuses_a_broadcast_input_beside_batched_ones() -> None:
    op = get_op("concat")
    assert op is not None
    token, tokens = TensorType((1, 8), broadcast=True), TensorType((4, 8))
    with pytest.raises(ShapeError) as info:
        op.infer(op.Params.model_validate({}), [token, tokens])
    assert info.value.code == "E204" and "(1, 1, 8)" in info.value.message and "expand" in (info.value.hint or "")
    assert op.infer(op.Params.model_validate({}), [token, token]).out.shape == (2, 8)


def test_view_refuses_a_transposed_input() -> None:
    transposed = _infer("transpose", {"dim0": 1, "dim1": 2}, [(3, 4)], [F32])[3].out
    assert not transposed.contiguous
    op = get_op("view")
    assert op is not None
    with pytest.raises(ShapeError) as info:
        op.infer(op.Params.model_validate({"shape": [12]}), [transposed])
    assert info.value.code == "E202" and "reshape" in (info.value.hint or "")


def _infer_on(name: str, params: dict[str, Any], inputs: list[TensorType]) -> Inferred:
    op = get_op(name)
    assert op is not None
    return op.infer(op.Params.model_validate(params), inputs)


INPLACE_OPS = [("relu", {}), ("leaky_relu", {}), ("elu", {}), ("silu", {}), ("dropout", {}), ("dropout2d", {})]


@pytest.mark.parametrize("name,params", INPLACE_OPS, ids=[n for n, _ in INPLACE_OPS])
def test_inplace_refuses_an_expanded_input_or_a_parameter(name: str, params: dict[str, Any], tmp_path: Path) -> None:
    """The op says why its output may not be overwritten (`keeps_output`); specc/inplace.py refuses the
    in-place op at its `inplace` key."""
    expanded = _infer("expand", {"sizes": [3, 4, 4]}, [(1, 4, 4)], [F32])[3].out
    parameter = _infer("parameter", {"shape": [3, 4, 4]}, [], [])[3].out
    assert expanded.expanded and not parameter.expanded
    extra = "".join(f", {key}: {value}" for key, value in params.items())
    makers = {
        "expanded": ("{shape: [1, 4, 4]}", "{op: expand, sizes: [3, 4, 4]}"),
        "parameter": ("{shape: [3, 4, 4]}", "{op: parameter, shape: [3, 4, 4]}"),
        "transposed": ("{shape: [3, 4, 4]}", "{op: linear, out_features: 4}\n  - {op: transpose, dim0: 1, dim1: 2}"),
    }
    for kind, (shape, before) in makers.items():
        for inplace in (True, False):
            layer = f"{{op: {name}{extra}" + (", inplace: true}" if inplace else "}")
            text = f"name: Net\ninput: {shape}\nlayers:\n  - {before}\n  - {layer}\n"
            spec = tmp_path / f"{kind}_{inplace}.yaml"
            spec.write_text(text, encoding="utf-8")
            if not inplace or kind == "transposed":  # a new tensor; or strided, but each element once: allowed
                analyze(spec)
                continue
            with pytest.raises(SpecErrors) as info:
                analyze(spec)
            (error,) = info.value.errors
            line = text.splitlines()[-1]
            assert error.code == "E202" and error.loc is not None, error.format()
            assert (error.loc.line, error.loc.col) == (len(text.splitlines()), line.index("true") + 1)  # `inplace`


def test_inplace_rules_match_torch() -> None:
    """What the inplace rules refuse, torch refuses; what they allow, it runs."""
    with pytest.raises(RuntimeError):
        torch.zeros(2, 1, 4).expand(2, 3, 4).relu_()
    with pytest.raises(RuntimeError):
        torch.nn.Parameter(torch.zeros(1, 4)).relu_()
    with pytest.raises(RuntimeError):  # a view of a parameter
        torch.nn.Parameter(torch.zeros(1, 4)).reshape(1, 2, 2).relu_()
    torch.zeros(2, 3, 4).transpose(1, 2).relu_()
    torch.zeros(2, 1, 4).expand(2, 1, 4).relu_()  # expanding nothing: no shared memory


def test_expand_marks_only_real_expansion() -> None:
    assert _infer("expand", {"sizes": [3, -1]}, [(1, 4)], [F32])[3].out.expanded
    assert not _infer("expand", {"sizes": [-1, 4]}, [(1, 4)], [F32])[3].out.expanded
    op = get_op("expand")
    assert op is not None
    token, tokens = TensorType((1, 8), broadcast=True), TensorType((4, 8))
    assert op.infer(op.Params.model_validate({}), [token, tokens]).out.expanded  # batch 1 -> B


def test_group_norm_needs_more_than_one_value_per_group() -> None:
    with pytest.raises(ValueError, match="more than 1 value"):  # what the E202 rule prevents
        torch.nn.GroupNorm(4, 4)(torch.randn(1, 4))
    _infer("group_norm", {"num_groups": 2}, [(4,)], [F32])  # two values per group
    _infer("group_norm", {"num_groups": 4}, [(4, 2)], [F32])  # one channel, two positions


def test_batch_norm_refuses_a_broadcast_input_with_one_value_per_channel() -> None:
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(torch.randn(1, 4), None, None, training=True)
    for name, shape in (("batch_norm1d", (4,)), ("batch_norm2d", (4, 1, 1))):
        with pytest.raises(ShapeError) as info:
            _infer_on(name, {}, [TensorType(shape, broadcast=True)])
        assert info.value.code == "E202"
        _infer_on(name, {}, [TensorType(shape)])  # per sample: batch B
    _infer_on("batch_norm1d", {}, [TensorType((4, 3), broadcast=True)])  # three values per channel


def test_attn_mask_of_batch_one_may_leave_out_leading_dims() -> None:
    q = TensorType((2, 5, 8))
    for shape in ((5,), (5, 5), (1, 1, 5)):
        _infer_on("scaled_dot_product_attention", {"attn_mask": "m"}, [q, q, q, TensorType(shape, "bool", True)])


def test_attn_mask_with_the_batch_dim_matches_torch() -> None:
    """Why a per-sample mask needs the weights' every dim: a (B, S) mask meets the query length, not B."""
    q = torch.randn(3, 2, 4)  # B = 3, L = 2
    with pytest.raises(RuntimeError):
        F.scaled_dot_product_attention(q, q, q, attn_mask=torch.ones(3, 2, dtype=torch.bool))
    F.scaled_dot_product_attention(q, q, q, attn_mask=torch.ones(3, 1, 2, dtype=torch.bool))  # (B, 1, S)


INVALID_PARAMS = [
    ("max_pool2d", {"kernel_size": 2, "return_indices": True}),
    ("adaptive_max_pool2d", {"output_size": 2, "return_indices": True}),
    ("max_pool2d", {"kernel_size": 2, "stride": 0}),
    ("max_pool2d", {"kernel_size": [2, 2, 2]}),
    ("avg_pool2d", {"kernel_size": 2, "dilation": 2}),
    ("max_pool1d", {}),
    ("adaptive_avg_pool1d", {"output_size": [None]}),
    ("adaptive_avg_pool2d", {"output_size": [0, 1]}),
    ("dropout", {"p": 1.5}),
    ("dropout", {"p": "0.5"}),
    ("gelu", {"approximate": "fast"}),
    ("sigmoid", {"inplace": True}),
    ("batch_norm2d", {"momentum": 2.0}),
    ("batch_norm2d", {"eps": 0.0}),
    ("layer_norm", {"normalized_shape": []}),
    ("group_norm", {}),
    ("unflatten", {"dim": 1, "sizes": [2, 0]}),
    ("unflatten", {"dim": 1, "sizes": []}),
    ("embedding", {"num_embeddings": 4}),
    ("relu", {"inplace": 1}),
    ("concat", {"dim": 1.0}),
    ("parameter", {}),
    ("parameter", {"shape": [0]}),
    ("parameter", {"shape": [2], "init": "xavier"}),
    ("multihead_attention", {"num_heads": 2, "key_padding_mask": "not a name"}),
    ("chunk", {"chunks": 2, "dim": -1}),
    ("transformer_encoder_layer", {"nhead": 2, "activation": "tanh"}),
]


@pytest.mark.parametrize("name,params", INVALID_PARAMS, ids=[_call_id(n, p) for n, p in INVALID_PARAMS])
def test_invalid_params(name: str, params: dict[str, Any]) -> None:
    op = get_op(name)
    assert op is not None
    with pytest.raises(ValidationError):
        op.Params.model_validate(params)


# --- MACs


def test_macs_by_hand() -> None:
    def macs(name: str, params: dict[str, Any], shape: Shape) -> int:
        return _infer(name, params, [shape], [F32])[3].macs

    assert macs("conv2d", {"out_channels": 6, "kernel_size": 5}, (1, 32, 32)) == 6 * 28 * 28 * 5 * 5 == 117_600
    assert macs("conv2d", {"out_channels": 16, "kernel_size": 5}, (6, 14, 14)) == 16 * 10 * 10 * 6 * 25 == 240_000
    assert macs("conv2d", {"out_channels": 8, "kernel_size": 3, "groups": 8, "padding": 1}, (8, 4, 4)) == 8 * 16 * 9
    assert macs("linear", {"out_features": 120}, (400,)) == 48_000
    assert macs("linear", {"out_features": 4, "bias": False}, (3, 7)) == 3 * 7 * 4
    assert macs("max_pool2d", {"kernel_size": 2}, (6, 28, 28)) == 0


FLOP_CASES = [
    ("conv2d", {"out_channels": 6, "kernel_size": 5}, (1, 32, 32)),
    ("conv2d", {"out_channels": 8, "kernel_size": 3, "groups": 2, "stride": 2, "padding": 1}, (4, 9, 9)),
    ("conv2d", {"out_channels": 6, "kernel_size": 3, "groups": 6, "dilation": 2}, (6, 9, 9)),
    ("conv2d", {"out_channels": 4, "kernel_size": 4, "padding": "same"}, (3, 9, 9)),
    ("conv1d", {"out_channels": 5, "kernel_size": 3, "stride": 2}, (3, 11)),
    ("conv3d", {"out_channels": 2, "kernel_size": [1, 3, 3], "padding": [0, 1, 1]}, (3, 2, 5, 5)),
    ("conv_transpose1d", {"out_channels": 4, "kernel_size": 3, "stride": 2, "output_padding": 1}, (2, 5)),
    ("conv_transpose2d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "groups": 2, "padding": 1}, (4, 5, 5)),
    ("linear", {"out_features": 10}, (20,)),
    ("linear", {"out_features": 3}, (2, 4, 5)),
]


@pytest.mark.parametrize("name,params,shape", FLOP_CASES, ids=[_case_id(n, (p, s, F32)) for n, p, s in FLOP_CASES])
def test_macs_match_flop_counter(name: str, params: dict[str, Any], shape: Shape) -> None:
    op, p, inputs, inferred = _infer(name, params, [shape], [F32])
    module, _ = _build(op, p, inputs)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(_tensor(shape, F32, batch=1))
    assert counter.get_total_flops() == 2 * inferred.macs


@contextlib.contextmanager
def _counted_attention() -> Iterator[None]:
    """Attention as FlopCounterMode can count it: the math backend of sdpa (plain matmuls) and no fused
    fast path of nn.MultiheadAttention / transformer layers (the CPU kernels are not counted)."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


ATTENTION_FLOP_CASES: list[tuple[str, dict[str, Any], list[Shape]]] = [
    ("multihead_attention", {"num_heads": 2}, [(5, 8)]),
    ("multihead_attention", {"num_heads": 2, "causal": True}, [(5, 8)]),
    ("multihead_attention", {"num_heads": 2, "add_bias_kv": True, "add_zero_attn": True}, [(5, 8), (7, 6), (7, 4)]),
    ("scaled_dot_product_attention", {}, [(2, 5, 8), (2, 6, 8), (2, 6, 4)]),
    ("scaled_dot_product_attention", {"is_causal": True}, [(3, 5, 8)] * 3),
    ("transformer_encoder_layer", {"nhead": 2, "dim_feedforward": 16}, [(5, 8)]),
    ("transformer_decoder_layer", {"nhead": 2, "dim_feedforward": 16}, [(5, 8), (7, 8)]),
    ("transformer_encoder", {"nhead": 2, "num_layers": 2, "dim_feedforward": 16, "norm": True}, [(5, 8)]),
    ("transformer_decoder", {"nhead": 2, "num_layers": 2, "dim_feedforward": 16}, [(5, 8), (7, 8)]),
    (
        "transformer",
        {"nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 2, "dim_feedforward": 16},
        [(6, 8), (5, 8)],
    ),
    ("positional_embedding", {}, [(5, 8)]),
]


@pytest.mark.parametrize(
    "name,params,shapes", ATTENTION_FLOP_CASES, ids=[_case_id(n, (p, s, F32)) for n, p, s in ATTENTION_FLOP_CASES]
)
def test_attention_macs_match_flop_counter(name: str, params: dict[str, Any], shapes: list[Shape]) -> None:
    """Projections, both attention products (Q K^T and weights @ V) and feed-forward layers, exactly."""
    op, p, inputs, inferred = _infer(name, params, shapes, [F32] * len(shapes))
    module, code = _build(op, p, inputs)
    if module is not None:
        module.eval()
    namespace = {**NAMESPACE, **dict(zip(ARGS, [_tensor(s, F32, batch=1) for s in shapes], strict=False))}
    counter = FlopCounterMode(display=False)
    with _counted_attention(), counter, torch.no_grad():
        eval(code, {**namespace, "module": module, "self": _Self()})
    assert counter.get_total_flops() == 2 * inferred.macs


# --- output sizes against torch, exhaustively over small sizes


def _specc_size(name: str, params: dict[str, Any], shape: Shape) -> tuple[int, ...] | None:
    try:
        return _infer(name, params, [shape], [F32])[3].out.shape
    except ShapeError:
        return None


def _torch_size(fn: Any, x: torch.Tensor, **kwargs: Any) -> tuple[int, ...] | None:
    try:
        return tuple(fn(x, **kwargs).shape[1:])
    except RuntimeError:
        return None


def test_pool_sizes_match_torch() -> None:
    bites = 0
    for length, k, s, pad, d, ceil in itertools.product(
        range(1, 8), range(1, 5), range(1, 4), range(3), (1, 2), (0, 1)
    ):
        x = torch.zeros(1, 1, length)
        params = {"kernel_size": k, "stride": s, "padding": pad, "ceil_mode": bool(ceil)}
        for name, fn, extra in (
            ("max_pool1d", F.max_pool1d, {"dilation": d}),
            ("avg_pool1d", F.avg_pool1d, {}),
        ):
            if name == "avg_pool1d" and d != 1:
                continue
            ours = _specc_size(name, {**params, **extra}, (1, length))
            theirs = _torch_size(fn, x, **params, **extra)
            label = f"{name} L={length} {params} {extra}"
            if ours is None and theirs is not None:
                # Only where specc is stricter on purpose: a (dilated) kernel larger than the padded input.
                assert d * (k - 1) + 1 > length + 2 * pad, label
            else:
                assert ours == theirs, label
            if ceil and ours and ours[-1] == (length + 2 * pad - d * (k - 1) - 1 + s - 1) // s:
                bites += 1  # the last window would start in the right padding, so it was dropped
    assert bites > 0


def test_pool2d_sizes_match_torch() -> None:
    x = torch.zeros(1, 2, 7, 10)
    grid = itertools.product(((2, 3), (3, 2), 3), (1, 2, (2, 3)), (0, (1, 0), 1), (1, (2, 1)), (False, True))
    for k, s, pad, d, ceil in grid:
        params = {"kernel_size": k, "stride": s, "padding": pad, "ceil_mode": ceil}
        spec = {key: list(v) if isinstance(v, tuple) else v for key, v in params.items()}
        spec_d = list(d) if isinstance(d, tuple) else d
        ours = _specc_size("max_pool2d", {**spec, "dilation": spec_d}, (2, 7, 10))
        assert ours == _torch_size(F.max_pool2d, x, **params, dilation=d), (params, d)
        if d == 1:
            assert _specc_size("avg_pool2d", spec, (2, 7, 10)) == _torch_size(F.avg_pool2d, x, **params), params


def test_adaptive_pool_sizes_match_torch() -> None:
    x = torch.zeros(1, 2, 5, 9)
    for size in (1, 3, 12, [None, 4], [6, None], [2, 2]):
        spec = _specc_size("adaptive_avg_pool2d", {"output_size": size}, (2, 5, 9))
        out = tuple(size) if isinstance(size, list) else size
        assert spec == tuple(F.adaptive_avg_pool2d(x, out).shape[1:])
        assert spec == tuple(F.adaptive_max_pool2d(x, out).shape[1:])


def test_conv1d_sizes_match_torch() -> None:
    for length, k, s, pad, d in itertools.product(
        range(1, 8), range(1, 5), range(1, 4), (0, 1, 2, "same", "valid"), (1, 2)
    ):
        x, w = torch.zeros(1, 1, length), torch.zeros(1, 1, k)
        params = {"out_channels": 1, "kernel_size": k, "stride": s, "padding": pad, "dilation": d}
        ours = _specc_size("conv1d", params, (1, length))
        theirs = _torch_size(F.conv1d, x, weight=w, stride=s, padding=pad, dilation=d)
        assert ours == theirs, f"L={length} {params}"


def test_conv_transpose1d_sizes_match_torch() -> None:
    for length, k, s, pad, out_pad, d in itertools.product(
        range(1, 5), range(1, 4), range(1, 4), range(3), range(3), (1, 2)
    ):
        x, w = torch.zeros(1, 1, length), torch.zeros(1, 1, k)
        params = {
            "out_channels": 1,
            "kernel_size": k,
            "stride": s,
            "padding": pad,
            "output_padding": out_pad,
            "dilation": d,
        }
        ours = _specc_size("conv_transpose1d", params, (1, length))
        theirs = _torch_size(F.conv_transpose1d, x, weight=w, stride=s, padding=pad, output_padding=out_pad, dilation=d)
        assert ours == theirs, f"L={length} {params}"
