"""Embedding lookup: integer indices in, float vectors out. A lookup counts 0 MACs."""

from specc.ops.base import (
    INT_DTYPES,
    Call,
    Inferred,
    Op,
    OpParams,
    PosInt,
    PositiveFloat,
    ShapeError,
    TensorType,
    kwargs_without_defaults,
)
from specc.ops.registry import register


class EmbeddingParams(OpParams):
    num_embeddings: PosInt
    embedding_dim: PosInt
    padding_idx: int | None = None
    max_norm: PositiveFloat | None = None
    norm_type: PositiveFloat = 2.0
    scale_grad_by_freq: bool = False
    sparse: bool = False


@register
class Embedding(Op):
    name = "embedding"
    Params = EmbeddingParams
    prefix = "embed"
    torch_name = "nn.Embedding"
    summary = "Looks up integer indices in a table of `num_embeddings` vectors of size `embedding_dim`."
    tieable = True

    def infer(self, p: EmbeddingParams, inputs: list[TensorType]) -> Inferred:
        x = inputs[0]
        if x.dtype not in INT_DTYPES:
            raise ShapeError(
                "E205",
                f"embedding expects integer indices ({' or '.join(INT_DTYPES)}), but its input is {x.dtype}",
                hint="give the input `dtype: int64`",
            )
        n = p.num_embeddings
        if p.padding_idx is not None and not -n <= p.padding_idx < n:
            raise ShapeError(
                "E104",
                f"padding_idx ({p.padding_idx}) must be within num_embeddings (from {-n} to {n - 1})",
                field="padding_idx",
            )
        out = TensorType((*x.shape, p.embedding_dim), "float32")
        return Inferred(out, params=n * p.embedding_dim, shapes=(("weight", (n, p.embedding_dim)),))

    def emit(self, p: EmbeddingParams, inputs: list[TensorType]) -> Call:
        names = ["padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse"]
        return Call(self.torch_name, (p.num_embeddings, p.embedding_dim), kwargs_without_defaults(p, names))
