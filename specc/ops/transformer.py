"""Transformer layers and stacks: nn.TransformerEncoderLayer/DecoderLayer, nn.TransformerEncoder/Decoder and
nn.Transformer, always batch first (per sample, a sequence is (L, d_model)). `d_model` is inferred.

Their parameter names are torch's (`self_attn.in_proj_weight`, `linear1.weight`, `norm1.weight`, ...), so
a spec of `encoder` and `decoder` stacks has nn.Transformer's exact state_dict keys. MACs count every
projection, both attention products of each attention, and the feed-forward layers.
"""

from typing import Any, Literal

from pydantic import Field

from specc.ops.attention import (
    KEY_PADDING_MASK,
    attention_macs,
    attention_tensors,
    causal_mask,
    check_padding_mask,
    check_sequence,
)
from specc.ops.base import (
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
    literal,
)
from specc.ops.registry import register

MEMORY_PADDING_MASK = "A (B, S) bool input, True where a memory (encoder output) position is padding."
CAUSAL = "Mask every position after its query in the (target) self-attention."


class _LayerParams(OpParams):
    nhead: PosInt
    dim_feedforward: PosInt = 2048
    dropout: Probability = 0.1
    activation: Literal["relu", "gelu"] = "relu"
    layer_norm_eps: PositiveFloat = 1e-5
    norm_first: bool = False
    bias: bool = True
    causal: bool = Field(default=False, description=CAUSAL)
    key_padding_mask: NodeRef | None = Field(default=None, description=KEY_PADDING_MASK)
    d_model: PosInt | None = None


class EncoderLayerParams(_LayerParams):
    pass


class DecoderLayerParams(_LayerParams):
    memory_key_padding_mask: NodeRef | None = Field(default=None, description=MEMORY_PADDING_MASK)


class EncoderParams(EncoderLayerParams):
    num_layers: PosInt
    norm: bool = Field(default=False, description="A final nn.LayerNorm after the last layer.")
    enable_nested_tensor: bool = Field(
        default=True,
        description="Let eval mode skip padding (key_padding_mask) with nested tensors; False where torch"
        " cannot (norm_first, bias=False, an odd nhead).",
    )


class DecoderParams(DecoderLayerParams):
    num_layers: PosInt
    norm: bool = Field(default=False, description="A final nn.LayerNorm after the last layer.")


class TransformerParams(OpParams):
    nhead: PosInt = 8
    num_encoder_layers: PosInt = 6
    num_decoder_layers: PosInt = 6
    dim_feedforward: PosInt = 2048
    dropout: Probability = 0.1
    activation: Literal["relu", "gelu"] = "relu"
    layer_norm_eps: PositiveFloat = 1e-5
    norm_first: bool = False
    bias: bool = True
    causal: bool = Field(default=False, description=CAUSAL)
    src_key_padding_mask: NodeRef | None = Field(default=None, description=KEY_PADDING_MASK)
    tgt_key_padding_mask: NodeRef | None = Field(default=None, description=KEY_PADDING_MASK)
    memory_key_padding_mask: NodeRef | None = Field(default=None, description=MEMORY_PADDING_MASK)
    d_model: PosInt | None = None


_LAYER_KWARGS = ("dim_feedforward", "dropout", "activation", "layer_norm_eps")


def _layer_kwargs(p: Any) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments of a layer in torch's order, defaults left out, always batch first."""
    fields = type(p).model_fields
    kwargs = [(name, getattr(p, name)) for name in _LAYER_KWARGS if getattr(p, name) != fields[name].default]
    kwargs.append(("batch_first", True))
    kwargs += [(name, getattr(p, name)) for name in ("norm_first", "bias") if getattr(p, name) != fields[name].default]
    return tuple(kwargs)


def _norm(d_model: int, p: Any) -> str:
    kwargs = [f"eps={p.layer_norm_eps!r}"] if p.layer_norm_eps != 1e-5 else []
    kwargs += ["bias=False"] if not p.bias else []
    return f"nn.LayerNorm({', '.join([literal(d_model), *kwargs])})"


def _layer_tensors(d_model: int, p: Any, decoder: bool, prefix: str = "") -> list[tuple[str, int]]:
    """A layer's parameters in named_parameters() order."""
    tensors = attention_tensors(d_model, d_model, d_model, p.bias, prefix="self_attn.")
    if decoder:
        tensors += attention_tensors(d_model, d_model, d_model, p.bias, prefix="multihead_attn.")
    ff = p.dim_feedforward
    for name, (n_in, n_out) in (("linear1", (d_model, ff)), ("linear2", (ff, d_model))):
        tensors.append((f"{name}.weight", n_in * n_out))
        if p.bias:
            tensors.append((f"{name}.bias", n_out))
    for norm in ("norm1", "norm2", "norm3") if decoder else ("norm1", "norm2"):
        tensors += _norm_tensors(d_model, p, f"{norm}.")
    return [(prefix + name, size) for name, size in tensors]


def _norm_tensors(d_model: int, p: Any, prefix: str) -> list[tuple[str, int]]:
    return [(f"{prefix}weight", d_model), *([(f"{prefix}bias", d_model)] if p.bias else [])]


def _layer_macs(length: int, memory: int | None, d_model: int, ff: int) -> int:
    macs = attention_macs(length, length, d_model, d_model, d_model, length) + 2 * length * d_model * ff
    if memory is not None:
        macs += attention_macs(length, memory, d_model, d_model, d_model, memory)
    return macs


def _d_model(p: Any, x: TensorType, what: str, role: str = "input") -> int:
    check_sequence(x, what, role)
    d_model = x.shape[-1]
    check_declared(p, "d_model", d_model, f"{role} {x.describe()}")
    if d_model % p.nhead:
        raise ShapeError("E202", f"d_model ({d_model}) must be divisible by nhead ({p.nhead})", field="nhead")
    return d_model


def _memory(x: TensorType, memory: TensorType, what: str) -> int:
    check_sequence(memory, what, "memory")
    if memory.shape[-1] != x.shape[-1]:
        raise ShapeError(
            "E204", f"{what}: memory {memory.describe()} and target {x.describe()} differ in d_model (the last dim)"
        )
    return memory.shape[0]


def _masks(p: Any, inputs: list[TensorType], fields: list[tuple[str, int]], what: str) -> None:
    """Check the masks named by `fields` ((field, the length it masks)), which follow the main inputs."""
    masks = iter(inputs[len(inputs) - sum(getattr(p, f) is not None for f, _ in fields) :])
    for field, length in fields:
        if getattr(p, field) is not None:
            check_padding_mask(next(masks), length, what, field)


def _call(module: str, args: list[str], kwargs: list[tuple[str, str | None]]) -> str:
    return f"{module}({', '.join([*args, *(f'{k}={v}' for k, v in kwargs if v is not None)])})"


class _Layer(Op):
    torch_layer: str
    decoder: bool = False

    def chainable(self, p: Any) -> str | None:
        if self.decoder:
            return "it takes two inputs (target and memory)"
        return "it needs its mask in forward" if p.causal else super().chainable(p)

    def _layer_code(self, p: Any, d_model: int) -> str:
        return Call(self.torch_layer, (d_model, p.nhead), _layer_kwargs(p)).render()

    def _mask_args(self, p: Any, args: list[str]) -> dict[str, str | None]:
        masks = iter(args[len(args) - self.refs(p) :])
        names = ["key_padding_mask", "memory_key_padding_mask"] if self.decoder else ["key_padding_mask"]
        return {name: next(masks) if getattr(p, name) is not None else None for name in names}


@register
class TransformerEncoderLayer(_Layer):
    name = "transformer_encoder_layer"
    Params = EncoderLayerParams
    prefix = "encoder_layer"
    torch_name = "nn.TransformerEncoderLayer"
    torch_layer = "nn.TransformerEncoderLayer"
    summary = "Self-attention and feed-forward, each with a residual and layer norm (post-norm, or `norm_first`)."
    inferred_params = ("d_model",)
    ref_params = ("key_padding_mask",)

    def infer(self, p: EncoderLayerParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        d_model = _d_model(p, x, self.name)
        _masks(p, inputs, [("key_padding_mask", x.shape[0])], self.name)
        tensors = _layer_tensors(d_model, p, decoder=False)
        return Inferred(
            x,
            params=sum(s for _, s in tensors),
            macs=_layer_macs(x.shape[0], None, d_model, p.dim_feedforward),
            tensors=tuple(tensors),
        )

    def emit(self, p: EncoderLayerParams, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name, (inputs[0].shape[-1], p.nhead), _layer_kwargs(p))

    def module_call(self, p: EncoderLayerParams, inputs: list[TensorType], module: str, args: list[str]) -> str:
        x, masks = args[0], self._mask_args(p, args)
        return _call(
            module,
            [x],
            [
                ("src_mask", causal_mask(x) if p.causal else None),
                ("src_key_padding_mask", masks["key_padding_mask"]),
                ("is_causal", "True" if p.causal else None),
            ],
        )


@register
class TransformerEncoder(_Layer):
    name = "transformer_encoder"
    Params = EncoderParams
    prefix = "encoder"
    torch_name = "nn.TransformerEncoder"
    torch_layer = "nn.TransformerEncoderLayer"
    summary = "A stack of `num_layers` transformer encoder layers (`layers.0`, ...), with an optional final `norm`."
    inferred_params = ("d_model",)
    ref_params = ("key_padding_mask",)

    def infer(self, p: EncoderParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        d_model = _d_model(p, x, self.name)
        _masks(p, inputs, [("key_padding_mask", x.shape[0])], self.name)
        tensors = []
        for i in range(p.num_layers):
            tensors += _layer_tensors(d_model, p, decoder=False, prefix=f"layers.{i}.")
        if p.norm:
            tensors += _norm_tensors(d_model, p, "norm.")
        macs = p.num_layers * _layer_macs(x.shape[0], None, d_model, p.dim_feedforward)
        return Inferred(x, params=sum(s for _, s in tensors), macs=macs, tensors=tuple(tensors))

    def emit(self, p: EncoderParams, inputs: list[TensorType]) -> Call:
        d_model = inputs[0].shape[-1]
        raw = [self._layer_code(p, d_model), literal(p.num_layers)]
        if p.norm:
            raw.append(f"norm={_norm(d_model, p)}")
        if not p.enable_nested_tensor or p.norm_first or not p.bias or p.nhead % 2:
            raw.append("enable_nested_tensor=False")  # where torch cannot use them, it would only warn
        return Call(self.torch_name, raw_args=tuple(raw))

    def module_call(self, p: EncoderParams, inputs: list[TensorType], module: str, args: list[str]) -> str:
        x, masks = args[0], self._mask_args(p, args)
        return _call(
            module,
            [x],
            [
                ("mask", causal_mask(x) if p.causal else None),
                ("src_key_padding_mask", masks["key_padding_mask"]),
                ("is_causal", "True" if p.causal else None),
            ],
        )


def _decoder_call(p: Any, module: str, args: list[str], masks: dict[str, str | None]) -> str:
    tgt, memory = args[0], args[1]
    return _call(
        module,
        [tgt, memory],
        [
            ("tgt_mask", causal_mask(tgt) if p.causal else None),
            ("tgt_key_padding_mask", masks["key_padding_mask"]),
            ("memory_key_padding_mask", masks["memory_key_padding_mask"]),
            ("tgt_is_causal", "True" if p.causal else None),
        ],
    )


@register
class TransformerDecoderLayer(_Layer):
    name = "transformer_decoder_layer"
    Params = DecoderLayerParams
    prefix = "decoder_layer"
    torch_name = "nn.TransformerDecoderLayer"
    torch_layer = "nn.TransformerDecoderLayer"
    summary = (
        "Self-attention, attention over `memory` (the second input) and feed-forward, each with a residual"
        " and layer norm."
    )
    decoder = True
    min_inputs = 2
    max_inputs = 2
    inferred_params = ("d_model",)
    ref_params = ("key_padding_mask", "memory_key_padding_mask")

    def infer(self, p: DecoderLayerParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        d_model = _d_model(p, x, self.name, "target")
        memory = _memory(x, inputs[1], self.name)
        _masks(p, inputs, [("key_padding_mask", x.shape[0]), ("memory_key_padding_mask", memory)], self.name)
        tensors = _layer_tensors(d_model, p, decoder=True)
        return Inferred(
            x,
            params=sum(s for _, s in tensors),
            macs=_layer_macs(x.shape[0], memory, d_model, p.dim_feedforward),
            tensors=tuple(tensors),
        )

    def emit(self, p: DecoderLayerParams, inputs: list[TensorType]) -> Call:
        return Call(self.torch_name, (inputs[0].shape[-1], p.nhead), _layer_kwargs(p))

    def module_call(self, p: DecoderLayerParams, inputs: list[TensorType], module: str, args: list[str]) -> str:
        return _decoder_call(p, module, args, self._mask_args(p, args))


@register
class TransformerDecoder(_Layer):
    name = "transformer_decoder"
    Params = DecoderParams
    prefix = "decoder"
    torch_name = "nn.TransformerDecoder"
    torch_layer = "nn.TransformerDecoderLayer"
    summary = "A stack of `num_layers` transformer decoder layers over (target, memory), with an optional final `norm`."
    decoder = True
    min_inputs = 2
    max_inputs = 2
    inferred_params = ("d_model",)
    ref_params = ("key_padding_mask", "memory_key_padding_mask")

    def infer(self, p: DecoderParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        d_model = _d_model(p, x, self.name, "target")
        memory = _memory(x, inputs[1], self.name)
        _masks(p, inputs, [("key_padding_mask", x.shape[0]), ("memory_key_padding_mask", memory)], self.name)
        tensors = []
        for i in range(p.num_layers):
            tensors += _layer_tensors(d_model, p, decoder=True, prefix=f"layers.{i}.")
        if p.norm:
            tensors += _norm_tensors(d_model, p, "norm.")
        macs = p.num_layers * _layer_macs(x.shape[0], memory, d_model, p.dim_feedforward)
        return Inferred(x, params=sum(s for _, s in tensors), macs=macs, tensors=tuple(tensors))

    def emit(self, p: DecoderParams, inputs: list[TensorType]) -> Call:
        d_model = inputs[0].shape[-1]
        raw = [self._layer_code(p, d_model), literal(p.num_layers)]
        if p.norm:
            raw.append(f"norm={_norm(d_model, p)}")
        return Call(self.torch_name, raw_args=tuple(raw))

    def module_call(self, p: DecoderParams, inputs: list[TensorType], module: str, args: list[str]) -> str:
        return _decoder_call(p, module, args, self._mask_args(p, args))


@register
class Transformer(Op):
    name = "transformer"
    Params = TransformerParams
    prefix = "transformer"
    torch_name = "nn.Transformer"
    summary = "The encoder-decoder transformer over inputs (source, target), as nn.Transformer (batch first)."
    min_inputs = 2
    max_inputs = 2
    inferred_params = ("d_model",)
    ref_params = ("src_key_padding_mask", "tgt_key_padding_mask", "memory_key_padding_mask")

    def infer(self, p: TransformerParams, inputs: list[TensorType]) -> Inferred:
        src, tgt = inputs[0], inputs[1]
        d_model = _d_model(p, src, self.name, "source")
        check_sequence(tgt, self.name, "target")
        if tgt.shape[-1] != d_model:
            raise ShapeError(
                "E204", f"{self.name}: source {src.describe()} and target {tgt.describe()} differ in d_model"
            )
        length, memory = tgt.shape[0], src.shape[0]
        _masks(
            p,
            inputs,
            [("src_key_padding_mask", memory), ("tgt_key_padding_mask", length), ("memory_key_padding_mask", memory)],
            self.name,
        )
        tensors = []
        for i in range(p.num_encoder_layers):
            tensors += _layer_tensors(d_model, p, decoder=False, prefix=f"encoder.layers.{i}.")
        tensors += _norm_tensors(d_model, p, "encoder.norm.")
        for i in range(p.num_decoder_layers):
            tensors += _layer_tensors(d_model, p, decoder=True, prefix=f"decoder.layers.{i}.")
        tensors += _norm_tensors(d_model, p, "decoder.norm.")
        macs = p.num_encoder_layers * _layer_macs(memory, None, d_model, p.dim_feedforward)
        macs += p.num_decoder_layers * _layer_macs(length, memory, d_model, p.dim_feedforward)
        return Inferred(tgt, params=sum(s for _, s in tensors), macs=macs, tensors=tuple(tensors))

    def emit(self, p: TransformerParams, inputs: list[TensorType]) -> Call:
        fields = type(p).model_fields
        kwargs: list[tuple[str, Any]] = [("d_model", inputs[0].shape[-1]), ("nhead", p.nhead)]
        names = ("num_encoder_layers", "num_decoder_layers", *_LAYER_KWARGS)
        kwargs += [(name, getattr(p, name)) for name in names if getattr(p, name) != fields[name].default]
        kwargs.append(("batch_first", True))
        kwargs += [(n, getattr(p, n)) for n in ("norm_first", "bias") if getattr(p, n) != fields[n].default]
        return Call(self.torch_name, (), tuple(kwargs))

    def module_call(self, p: TransformerParams, inputs: list[TensorType], module: str, args: list[str]) -> str:
        src, tgt = args[0], args[1]
        masks = iter(args[2:])
        named = {f: next(masks) if getattr(p, f) is not None else None for f in self.ref_params}
        return _call(
            module,
            [src, tgt],
            [
                ("tgt_mask", causal_mask(tgt) if p.causal else None),
                *named.items(),
                ("tgt_is_causal", "True" if p.causal else None),
            ],
        )

    def chainable(self, p: TransformerParams) -> str | None:
        return "it takes two inputs (source and target)"
