"""Optimizers (torch.optim). `lr` is the default of train.py's `--lr`; the optimizer receives only the
parameters with `requires_grad=True`, so frozen layers (fine-tuning) are left alone."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from specc.training.base import Call, Optimizer, Params, Var, non_default
from specc.training.registry import register

LearningRate = Annotated[float, Field(gt=0.0, le=1e3)]
Decay = Annotated[float, Field(ge=0.0, le=1.0)]
Momentum = Annotated[float, Field(ge=0.0, lt=1.0)]
Eps = Annotated[float, Field(gt=0.0, le=1.0)]
Betas = Annotated[list[Annotated[float, Field(ge=0.0, lt=1.0)]], Field(min_length=2, max_length=2)]


def _call(target: str, p: Params, names: list[str]) -> Call:
    kwargs = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in non_default(p, names))
    return Call(target, (Var("params"),), (("lr", Var("lr")), *kwargs))


class SgdParams(Params):
    lr: LearningRate = 0.01
    momentum: Momentum = 0.0
    dampening: Momentum = 0.0
    nesterov: bool = False
    weight_decay: Decay = 0.0

    @model_validator(mode="after")
    def _nesterov(self) -> SgdParams:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov momentum needs `momentum` > 0 and `dampening` 0")
        return self


@register
class Sgd(Optimizer):
    name = "sgd"
    torch_name = "torch.optim.SGD"
    summary = "Stochastic gradient descent, with optional (Nesterov) momentum and weight decay."
    Params = SgdParams

    def emit(self, p: SgdParams) -> Call:
        return _call("torch.optim.SGD", p, ["momentum", "dampening", "nesterov", "weight_decay"])


class AdamParams(Params):
    lr: LearningRate = 0.001
    betas: Betas = Field(default=[0.9, 0.999])
    eps: Eps = 1e-8
    weight_decay: Decay = 0.0
    amsgrad: bool = False


@register
class Adam(Optimizer):
    name = "adam"
    torch_name = "torch.optim.Adam"
    summary = "Adam (adaptive moments); `weight_decay` is added to the gradient (L2)."
    Params = AdamParams

    def emit(self, p: AdamParams) -> Call:
        return _call("torch.optim.Adam", p, ["betas", "eps", "weight_decay", "amsgrad"])


class AdamWParams(AdamParams):
    weight_decay: Decay = 0.01


@register
class AdamW(Optimizer):
    name = "adamw"
    torch_name = "torch.optim.AdamW"
    summary = "Adam with decoupled weight decay."
    Params = AdamWParams

    def emit(self, p: AdamWParams) -> Call:
        return _call("torch.optim.AdamW", p, ["betas", "eps", "weight_decay", "amsgrad"])


class RmspropParams(Params):
    lr: LearningRate = 0.01
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.99
    eps: Eps = 1e-8
    weight_decay: Decay = 0.0
    momentum: Momentum = 0.0
    centered: bool = False


@register
class Rmsprop(Optimizer):
    name = "rmsprop"
    torch_name = "torch.optim.RMSprop"
    summary = "RMSprop: gradients scaled by a running average of their squares."
    Params = RmspropParams

    def emit(self, p: RmspropParams) -> Call:
        return _call("torch.optim.RMSprop", p, ["alpha", "eps", "weight_decay", "momentum", "centered"])
