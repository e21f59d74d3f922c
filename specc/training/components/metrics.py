"""Evaluation metrics. Each is a pair of sums over a batch (`total`, `count`), accumulated over the
val/test set (and all-reduced across DDP ranks), reported as total / count."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from specc.training.base import Metric, MetricCode, Params, ShapeError
from specc.training.registry import register


class NoParams(Params):
    pass


@register
class Accuracy(Metric):
    name = "accuracy"
    summary = "Top-1 accuracy: the share of samples (of tokens, for a language model) whose top score is the target."
    Params = NoParams
    tasks = ("classification", "language_model")

    def emit(self, p: NoParams) -> MetricCode:
        return MetricCode("accuracy", "(output.argmax(dim=1) == target).sum()", "target.numel()")


class TopKParams(Params):
    k: Annotated[int, Field(ge=2, le=1000)] = 5


@register
class TopK(Metric):
    name = "top_k"
    summary = "Top-k accuracy: the share of samples whose target is among the k highest scores."
    Params = TopKParams
    tasks = ("classification",)

    def check(self, p: TopKParams, output: tuple[int, ...]) -> None:
        if output and output[0] < p.k:
            raise ShapeError(
                "E104", f"top-{p.k} accuracy needs at least {p.k} classes, but the model outputs {output[0]}"
            )

    def emit(self, p: TopKParams) -> MetricCode:
        return MetricCode(
            f"top{p.k}_accuracy",
            f"(output.topk({p.k}, dim=1).indices == target.unsqueeze(1)).any(dim=1).sum()",
            "target.numel()",
        )


@register
class Mse(Metric):
    name = "mse"
    summary = "Mean squared error over all output elements."
    Params = NoParams
    tasks = ("regression", "binary")

    def emit(self, p: NoParams) -> MetricCode:
        return MetricCode("mse", "(output.float() - target.float()).pow(2).sum()", "target.numel()")


@register
class Mae(Metric):
    name = "mae"
    summary = "Mean absolute error over all output elements."
    Params = NoParams
    tasks = ("regression", "binary")

    def emit(self, p: NoParams) -> MetricCode:
        return MetricCode("mae", "(output.float() - target.float()).abs().sum()", "target.numel()")


class BinaryAccuracyParams(Params):
    logits: bool = Field(default=True, description="Outputs are logits (threshold 0), else probabilities (0.5).")


@register
class BinaryAccuracy(Metric):
    name = "binary_accuracy"
    summary = "Accuracy of 0/1 predictions: output above the threshold vs target above 0.5."
    Params = BinaryAccuracyParams
    tasks = ("binary",)

    def emit(self, p: BinaryAccuracyParams) -> MetricCode:
        threshold = "0" if p.logits else "0.5"
        return MetricCode("accuracy", f"((output > {threshold}) == (target > 0.5)).sum()", "target.numel()")


@register
class Perplexity(Metric):
    name = "perplexity"
    summary = "exp(mean cross-entropy per token (or sample)) over the whole set: the language-model metric."
    Params = NoParams
    tasks = ("language_model", "classification")

    def emit(self, p: NoParams) -> MetricCode:
        return MetricCode(
            "perplexity",
            'nn.functional.cross_entropy(output.float(), target, reduction="sum")',
            "target.numel()",
            final="math.exp(min(value, 700.0))",
        )
