"""Loss functions (torch.nn), with the task they imply and the metrics reported by default."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from specc.training.base import Call, Loss, Params, ShapeError, TargetCode, non_default
from specc.training.registry import register

Reduction = Literal["mean", "sum"]


class CrossEntropyParams(Params):
    label_smoothing: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    ignore_index: int = -100


@register
class CrossEntropy(Loss):
    name = "cross_entropy"
    torch_name = "nn.CrossEntropyLoss"
    summary = "Softmax cross-entropy over class scores (logits), with optional label smoothing."
    Params = CrossEntropyParams
    task = "classification"
    default_metrics = (("accuracy", {}),)

    def emit(self, p: CrossEntropyParams) -> Call:
        return Call("nn.CrossEntropyLoss", (), non_default(p, ["label_smoothing", "ignore_index"]))


class NllParams(Params):
    ignore_index: int = -100


@register
class Nll(Loss):
    name = "nll"
    torch_name = "nn.NLLLoss"
    summary = "Negative log-likelihood of log-probabilities (a model ending in log_softmax)."
    Params = NllParams
    task = "classification"
    default_metrics = (("accuracy", {}),)

    def emit(self, p: NllParams) -> Call:
        return Call("nn.NLLLoss", (), non_default(p, ["ignore_index"]))


class NoParams(Params):
    pass


class _Regression(Loss):
    Params = NoParams
    task = "regression"
    default_metrics = (("mse", {}), ("mae", {}))

    def emit(self, p: Any) -> Call:
        return Call(self.torch_name)


@register
class Mse(_Regression):
    name = "mse"
    torch_name = "nn.MSELoss"
    summary = "Mean squared error; targets are reshaped to the output's shape."


@register
class L1(_Regression):
    name = "l1"
    torch_name = "nn.L1Loss"
    summary = "Mean absolute error; targets are reshaped to the output's shape."


class SmoothL1Params(Params):
    beta: Annotated[float, Field(gt=0.0)] = 1.0


@register
class SmoothL1(_Regression):
    name = "smooth_l1"
    torch_name = "nn.SmoothL1Loss"
    summary = "Huber-like loss: squared below `beta`, absolute above."
    Params = SmoothL1Params

    def emit(self, p: SmoothL1Params) -> Call:
        return Call(self.torch_name, (), non_default(p, ["beta"]))


class _Binary(Loss):
    task = "binary"
    Params = NoParams

    def check(self, p: Any, output: tuple[int, ...], num_classes: int | None) -> None:
        if num_classes is not None and num_classes != 2:
            raise ShapeError("E201", f"{self.name} is a two-class loss, but the data has {num_classes} classes")


@register
class Bce(_Binary):
    name = "bce"
    torch_name = "nn.BCELoss"
    summary = "Binary cross-entropy of probabilities in [0, 1] (a model ending in sigmoid); targets 0/1."
    default_metrics = (("binary_accuracy", {"logits": False}),)

    def emit(self, p: Any) -> Call:
        return Call("nn.BCELoss")


class BceLogitsParams(Params):
    pos_weight: Annotated[float, Field(gt=0.0)] | None = None


@register
class BceWithLogits(_Binary):
    name = "bce_with_logits"
    torch_name = "nn.BCEWithLogitsLoss"
    summary = "Binary cross-entropy of logits (numerically stable sigmoid + BCE); targets 0/1."
    Params = BceLogitsParams
    default_metrics = (("binary_accuracy", {"logits": True}),)

    def emit(self, p: BceLogitsParams) -> Call:
        if p.pos_weight is None:
            return Call("nn.BCEWithLogitsLoss")
        return Call("nn.BCEWithLogitsLoss", (), (("pos_weight", Call("torch.tensor", (p.pos_weight,))),))


class LmCrossEntropyParams(Params):
    label_smoothing: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


@register
class LmCrossEntropy(Loss):
    name = "lm_cross_entropy"
    torch_name = "nn.CrossEntropyLoss"
    summary = (
        "Language modelling: cross-entropy of every position's next-token logits (L, V) against the shifted "
        "targets (L,), as one batch of tokens; reports perplexity."
    )
    Params = LmCrossEntropyParams
    task = "language_model"
    default_metrics = (("perplexity", {}), ("accuracy", {}))

    def emit(self, p: LmCrossEntropyParams) -> Call:
        return Call("nn.CrossEntropyLoss", (), non_default(p, ["label_smoothing"]))

    def target(self, p: Any) -> TargetCode:
        return TargetCode("target.flatten()", "int64", output="output.flatten(0, -2)")

    def check(self, p: Any, output: tuple[int, ...], num_classes: int | None) -> None:
        if len(output) != 2:
            shown = "(B, " + ", ".join(map(str, output)) + ")"
            raise ShapeError(
                "E203", f"{self.name} needs next-token logits of shape (B, L, V), but the model outputs {shown}"
            )
        if num_classes is not None and output[-1] != num_classes:
            raise ShapeError(
                "E201",
                f"the model outputs {output[-1]} logits per position, "
                f"but the data's vocabulary has {num_classes} tokens",
            )
