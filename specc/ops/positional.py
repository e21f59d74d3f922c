"""Position information for batch-first sequences (B, L, D): fixed sine/cosine encodings and learned
position embeddings, each added to its input. Both work for any length up to `max_len` (default: the
length the spec declares), so a language model can run on shorter prompts. They count 0 MACs.
"""

from typing import Any

from pydantic import Field

from specc.ops.attention import check_sequence
from specc.ops.base import Call, HelperClass, Inferred, Op, OpParams, PosInt, ShapeError, TensorType, check_declared
from specc.ops.registry import register

MAX_LEN = "The longest sequence it accepts; default: the input's length."

SINUSOIDAL = HelperClass(
    name="SinusoidalPositionalEncoding",
    init_params=("d_model: int", "max_len: int"),
    init_lines=(
        '# "Attention Is All You Need": sin and cos of position / 10000^(2i / d_model). A buffer, not saved.',
        "position = torch.arange(max_len).unsqueeze(1)",
        "div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))",
        "pe = torch.zeros(max_len, d_model)",
        "pe[:, 0::2] = torch.sin(position * div_term)",
        "pe[:, 1::2] = torch.cos(position * div_term)",
        'self.register_buffer("pe", pe, persistent=False)',
    ),
    forward_lines=(),
    output="x + self.pe[: x.shape[1]]",
    imports=("import math",),
)


class PositionalParams(OpParams):
    max_len: PosInt | None = Field(default=None, description=MAX_LEN)


def _check(p: PositionalParams, x: TensorType, what: str) -> int:
    check_sequence(x, what)
    length = x.shape[0]
    if p.max_len is not None and length > p.max_len:
        raise ShapeError("E202", f"its input {x.describe()} is longer than max_len ({p.max_len})", field="max_len")
    return p.max_len if p.max_len is not None else length


@register
class PositionalEncoding(Op):
    name = "positional_encoding"
    Params = PositionalParams
    prefix = "pos"
    torch_name = "torch.sin"
    summary = "Adds the fixed sinusoidal position encodings of the original Transformer to (B, L, D) input."
    keeps_layout = True  # x + encodings: the sum has the layout of x

    def infer(self, p: PositionalParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        _check(p, x, self.name)
        if x.shape[-1] % 2:
            raise ShapeError(
                "E202", f"sinusoidal encodings pair sin and cos, so D must be even, but its input is {x.describe()}"
            )
        return Inferred(x)

    def emit(self, p: PositionalParams, inputs: list[TensorType]) -> Call:
        x = inputs[0]
        return Call(SINUSOIDAL.name, (x.shape[-1], p.max_len if p.max_len is not None else x.shape[0]))

    def helpers(self, p: Any) -> tuple[HelperClass, ...]:
        return (SINUSOIDAL,)


class PositionalEmbeddingParams(PositionalParams):
    embedding_dim: PosInt | None = None


@register
class PositionalEmbedding(Op):
    name = "positional_embedding"
    Params = PositionalEmbeddingParams
    prefix = "pos"
    torch_name = "nn.Embedding"
    summary = "Adds a learned embedding of each position (an nn.Embedding of `max_len` positions) to (B, L, D) input."
    inferred_params = ("embedding_dim",)
    keeps_layout = True  # x + encodings: the sum has the layout of x

    def infer(self, p: PositionalEmbeddingParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        max_len = _check(p, x, self.name)
        dim = x.shape[-1]
        check_declared(p, "embedding_dim", dim, f"input {x.describe()}")
        return Inferred(x, params=max_len * dim, shapes=(("weight", (max_len, dim)),))

    def emit(self, p: PositionalEmbeddingParams, inputs: list[TensorType]) -> Call:
        x = inputs[0]
        return Call("nn.Embedding", (p.max_len if p.max_len is not None else x.shape[0], x.shape[-1]))

    def module_call(self, p: PositionalEmbeddingParams, inputs: list[TensorType], module: str, args: list[str]) -> str:
        x = args[0]
        return f"{x} + {module}(torch.arange({x}.shape[1], device={x}.device))"

    def chainable(self, p: PositionalEmbeddingParams) -> str | None:
        return "forward calls it on the positions, not on its input"
