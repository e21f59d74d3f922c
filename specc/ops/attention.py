"""Attention: `nn.MultiheadAttention` and the `scaled_dot_product_attention` function.

Sequences are batch first, as everywhere in specc: per sample, a query is (L, E), keys and values (S, E).
MACs count the projections and both attention products, Q @ K^T and softmax(...) @ V (L * S * E each),
which torchinfo-style counters miss.

Masks are extra inputs named by a parameter (`key_padding_mask: pad`): a per-sample (S,) bool tensor,
True where a key is padding and must be ignored (nn.MultiheadAttention's convention). `causal: true`
masks every key after its query. scaled_dot_product_attention's `attn_mask` is broadcast by torch against
the attention weights (B, ..., L, S) from the right, batch included: a per-sample mask needs all their dims,
(B, ..., L, S) with sizes 1 where it is the same; only a batch-1 value (a parameter's) may have fewer.
"""

import math
from typing import Any

from pydantic import Field

from specc.ops.base import (
    FLOAT_DTYPES,
    Call,
    Inferred,
    NodeRef,
    Op,
    OpParams,
    PosInt,
    PositiveFloat,
    Probability,
    ShapeError,
    TensorType,
    check_declared,
    check_float,
)
from specc.ops.registry import register

KEY_PADDING_MASK = "A (B, S) bool input, True where a key is padding (ignored)."


def check_sequence(x: TensorType, what: str, role: str = "input") -> None:
    """A batch-first sequence of vectors, (B, L, E)."""
    if x.rank != 2:
        raise ShapeError(
            "E203",
            f"{what} expects {role}s of shape (B, L, E) (batch first: L vectors of size E), but its {role} is"
            f" {x.describe()}",
        )
    check_float(x, what)


def check_padding_mask(mask: TensorType, length: int, what: str, field: str) -> None:
    if mask.rank != 1 or mask.shape[0] != length:
        raise ShapeError(
            "E204",
            f"{what}: {field} must have shape (B, {length}), one flag per key, but it is {mask.describe()}",
            field=field,
        )
    if mask.dtype != "bool":
        raise ShapeError(
            "E205",
            f"{what}: {field} must be bool (True where a key is padding), but it is {mask.dtype}",
            field=field,
        )


def causal_mask(query: str, keys: str | None = None) -> str:
    """Code for a bool (L, S) mask that is True above the diagonal (nn.MultiheadAttention: True = masked)."""
    keys = keys or query
    return f"torch.ones({query}.shape[1], {keys}.shape[1], dtype=torch.bool, device={query}.device).triu(1)"


def attention_macs(queries: int, keys: int, embed: int, kdim: int, vdim: int, attended: int) -> int:
    """nn.MultiheadAttention: q, k, v and output projections, and the two attention products."""
    projections = queries * embed * embed + keys * kdim * embed + keys * vdim * embed + queries * embed * embed
    return projections + 2 * queries * attended * embed


def attention_tensors(
    embed: int, kdim: int, vdim: int, bias: bool, bias_kv: bool = False, prefix: str = ""
) -> list[tuple[str, int]]:
    """nn.MultiheadAttention's parameters in named_parameters() order (its own, then out_proj's)."""
    if kdim == embed and vdim == embed:
        tensors = [("in_proj_weight", 3 * embed * embed)]
    else:
        tensors = [("q_proj_weight", embed * embed), ("k_proj_weight", embed * kdim), ("v_proj_weight", embed * vdim)]
    if bias:
        tensors.append(("in_proj_bias", 3 * embed))
    if bias_kv:
        tensors += [("bias_k", embed), ("bias_v", embed)]
    tensors.append(("out_proj.weight", embed * embed))
    if bias:
        tensors.append(("out_proj.bias", embed))
    return [(prefix + name, size) for name, size in tensors]


class MultiheadAttentionParams(OpParams):
    num_heads: PosInt
    dropout: Probability = 0.0
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    causal: bool = Field(default=False, description="Mask every key after its query (self-attention).")
    key_padding_mask: NodeRef | None = Field(default=None, description=KEY_PADDING_MASK)
    embed_dim: PosInt | None = None
    kdim: PosInt | None = None
    vdim: PosInt | None = None


@register
class MultiheadAttention(Op):
    name = "multihead_attention"
    Params = MultiheadAttentionParams
    prefix = "attn"
    torch_name = "nn.MultiheadAttention"
    summary = (
        "Multi-head attention, batch first: inputs query (self-attention), query and key/value, or query, key"
        " and value; returns the attention output only."
    )
    min_inputs = 1
    max_inputs = 3
    inferred_params = ("embed_dim", "kdim", "vdim")
    ref_params = ("key_padding_mask",)

    def _qkv(self, p: MultiheadAttentionParams, inputs: list[TensorType]) -> list[TensorType]:
        main = inputs[: len(inputs) - self.refs(p)]
        return [main[0], main[min(1, len(main) - 1)], main[-1]]

    def infer(self, p: MultiheadAttentionParams, inputs: list[TensorType]) -> Inferred:
        q, k, v = self._qkv(p, inputs)
        for x, role in ((q, "query"), (k, "key"), (v, "value")):
            check_sequence(x, self.name, role)
        embed, kdim, vdim = q.shape[-1], k.shape[-1], v.shape[-1]
        check_declared(p, "embed_dim", embed, f"query {q.describe()}")
        check_declared(p, "kdim", kdim, f"key {k.describe()}")
        check_declared(p, "vdim", vdim, f"value {v.describe()}")
        if embed % p.num_heads:
            raise ShapeError(
                "E202", f"embed_dim ({embed}) must be divisible by num_heads ({p.num_heads})", field="num_heads"
            )
        length, keys = q.shape[0], k.shape[0]
        if v.shape[0] != keys:
            raise ShapeError("E204", f"{self.name}: key {k.describe()} and value {v.describe()} differ in length")
        if p.causal and length != keys:
            raise ShapeError(
                "E204",
                f"causal attention masks the keys after each query, so it needs as many keys as queries,"
                f" but there are {length} queries and {keys} keys",
                field="causal",
            )
        if p.key_padding_mask is not None:
            check_padding_mask(inputs[-1], keys, self.name, "key_padding_mask")
        attended = keys + p.add_bias_kv + p.add_zero_attn
        tensors = attention_tensors(embed, kdim, vdim, p.bias, p.add_bias_kv)
        shapes = (("in_proj_weight", (3 * embed, embed)),) if kdim == embed == vdim else ()
        return Inferred(
            # batch_first: torch computes (L, B, E) and returns its transpose, a non-contiguous view
            TensorType((length, embed), q.dtype, contiguous=False),
            params=sum(size for _, size in tensors),
            macs=attention_macs(length, keys, embed, kdim, vdim, attended),
            tensors=tuple(tensors),
            shapes=(*shapes, ("out_proj.weight", (embed, embed))),
        )

    def emit(self, p: MultiheadAttentionParams, inputs: list[TensorType]) -> Call:
        q, k, v = self._qkv(p, inputs)
        embed = q.shape[-1]
        kwargs: list[tuple[str, Any]] = [
            (name, getattr(p, name))
            for name in ("dropout", "bias", "add_bias_kv", "add_zero_attn")
            if getattr(p, name) != type(p).model_fields[name].default
        ]
        kwargs += [(name, t.shape[-1]) for name, t in (("kdim", k), ("vdim", v)) if t.shape[-1] != embed]
        kwargs.append(("batch_first", True))
        return Call(self.torch_name, (embed, p.num_heads), tuple(kwargs))

    def module_call(self, p: MultiheadAttentionParams, inputs: list[TensorType], module: str, args: list[str]) -> str:
        main = args[: len(args) - self.refs(p)]
        q, k, v = main[0], main[min(1, len(main) - 1)], main[-1]
        kwargs = []
        if p.key_padding_mask is not None:
            kwargs.append(f"key_padding_mask={args[-1]}")
        kwargs.append("need_weights=False")
        if p.causal:
            kwargs += [f"attn_mask={causal_mask(q, k)}", "is_causal=True"]
        return f"{module}({q}, {k}, {v}, {', '.join(kwargs)})[0]"

    def chainable(self, p: MultiheadAttentionParams) -> str | None:
        return "it returns (output, weights); forward keeps the output"


class SdpaParams(OpParams):
    dropout_p: Probability = Field(default=0.0, description="Dropout on the attention weights, while training.")
    is_causal: bool = False
    scale: PositiveFloat | None = Field(default=None, description="Default: 1 / sqrt(E).")
    attn_mask: NodeRef | None = Field(
        default=None,
        description="An input broadcastable to (B, ..., L, S): bool (True = may attend) or float (added).",
    )
    key_padding_mask: NodeRef | None = Field(default=None, description=KEY_PADDING_MASK)


@register
class ScaledDotProductAttention(Op):
    name = "scaled_dot_product_attention"
    Params = SdpaParams
    kind = "function"
    prefix = "sdpa"
    torch_name = "torch.nn.functional.scaled_dot_product_attention"
    summary = (
        "softmax(Q K^T * scale + mask) V of inputs query (..., L, E), key (..., S, E) and value (..., S, Ev),"
        " e.g. per head: (B, heads, L, E)."
    )
    min_inputs = 3
    max_inputs = 3
    ref_params = ("attn_mask", "key_padding_mask")

    def keeps_output(self, p: SdpaParams, out: TensorType) -> str | None:
        return f"autograd keeps {self.name}'s output for the backward pass (its fused kernels do)"

    def infer(self, p: SdpaParams, inputs: list[TensorType]) -> Inferred:
        q, k, v = inputs[:3]
        masks = inputs[3:]
        for x, role in ((q, "query"), (k, "key"), (v, "value")):
            if x.rank < 2:
                raise ShapeError(
                    "E203", f"{self.name} expects a {role} of shape (B, ..., L, E), but its {role} is {x.describe()}"
                )
            check_float(x, self.name)
        if not q.rank == k.rank == v.rank or q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
            raise ShapeError(
                "E204",
                f"{self.name}: query {q.describe()}, key {k.describe()} and value {v.describe()} must have the"
                " same leading dims",
            )
        if q.shape[-1] != k.shape[-1]:
            raise ShapeError(
                "E204", f"{self.name}: query {q.describe()} and key {k.describe()} differ in their last dim"
            )
        if k.shape[-2] != v.shape[-2]:
            raise ShapeError("E204", f"{self.name}: key {k.describe()} and value {v.describe()} differ in length")
        length, keys = q.shape[-2], k.shape[-2]
        if p.attn_mask is not None:
            self._check_attn_mask(masks[0], q, length, keys)
        if p.key_padding_mask is not None:
            check_padding_mask(masks[-1], keys, self.name, "key_padding_mask")
        combined = len(masks) > 1 or (masks and p.is_causal)
        if combined and any(m.dtype != "bool" for m in masks):
            raise ShapeError(
                "E205",
                f"{self.name}: masks that are combined (with each other or is_causal) must be bool",
                field="attn_mask",
            )
        rows = math.prod(q.shape[:-2]) * length * keys
        return Inferred(TensorType((*q.shape[:-1], v.shape[-1]), q.dtype), macs=rows * (q.shape[-1] + v.shape[-1]))

    def _check_attn_mask(self, mask: TensorType, q: TensorType, length: int, keys: int) -> None:
        target = (*q.shape[:-2], length, keys)
        if mask.dtype != "bool" and mask.dtype not in FLOAT_DTYPES:
            raise ShapeError(
                "E205", f"{self.name}: attn_mask must be bool or float, not {mask.dtype}", field="attn_mask"
            )
        if mask.rank > len(target) or any(
            m not in (1, t) for m, t in zip(reversed(mask.shape), reversed(target), strict=False)
        ):
            shown = TensorType(target).describe()
            raise ShapeError(
                "E204",
                f"{self.name}: attn_mask {mask.describe()} does not broadcast to the attention weights {shown}",
                field="attn_mask",
            )
        if not mask.broadcast and mask.rank < len(target):
            # At run time the mask is (B, *mask.shape): torch lines dims up from the right, so with fewer dims
            # than the weights its batch dim would meet one of the weights' other dims, not their batch.
            weights = TensorType(target)
            met = len(target) - mask.rank  # that dim's index in (B, *target)
            padded = (*(1,) * met, *mask.shape)
            raise ShapeError(
                "E204",
                f"{self.name}: attn_mask {mask.describe()} differs per sample, so it needs every dim of the"
                f" attention weights {weights.describe()} (each of their size or 1); with fewer, torch would line"
                f" its batch dim up with the weights' dim {met} (size {target[met - 1]})",
                field="attn_mask",
                hint=f"give it the per-sample shape ({', '.join(str(d) for d in padded)}); to ignore padded keys,"
                " use key_padding_mask, a (B, S) bool input",
            )

    def imports(self, p: SdpaParams) -> tuple[str, ...]:
        return ("import torch.nn.functional as F",)

    def emit(self, p: SdpaParams, inputs: list[TensorType]) -> Call:
        return Call("F.scaled_dot_product_attention")

    def forward_code(self, p: SdpaParams, inputs: list[TensorType], args: list[str]) -> str:
        q, k, v = args[:3]
        masks = []
        if p.attn_mask is not None:
            masks.append(args[3])
        if p.key_padding_mask is not None:
            index = ", ".join([":"] + ["None"] * (inputs[0].rank - 1) + [":"])
            masks.append(f"~{args[-1]}[{index}]")  # (B, S) -> (B, 1, ..., 1, S); True = may attend
        if masks and p.is_causal:  # is_causal cannot be combined with a mask: make its mask explicit
            masks.append(f"torch.ones({q}.shape[-2], {k}.shape[-2], dtype=torch.bool, device={q}.device).tril()")
        kwargs = []
        if masks:
            kwargs.append(f"attn_mask={' & '.join(masks)}")
        if p.dropout_p:
            kwargs.append(f"dropout_p={p.dropout_p!r} if self.training else 0.0")
        if p.is_causal and not masks:
            kwargs.append("is_causal=True")
        if p.scale is not None:
            kwargs.append(f"scale={p.scale!r}")
        return f"F.scaled_dot_product_attention({', '.join([q, k, v, *kwargs])})"
