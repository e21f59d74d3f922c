"""Learning-rate schedulers (torch.optim.lr_scheduler). Epoch-based ones step after each epoch,
`onecycle` after each batch, `plateau` with the monitored loss. Their code may use the variables
`optimizer`, `lr`, `epochs` (the epochs after any warmup) and `steps_per_epoch` of train.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from specc.ops.base import PosInt
from specc.training.base import Call, Params, Scheduler, SchedulerCode, Var, non_default
from specc.training.registry import register

Gamma = Annotated[float, Field(gt=0.0)]
Factor = Annotated[float, Field(gt=0.0, le=1.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]

_LR = "torch.optim.lr_scheduler"


class StepParams(Params):
    step_size: PosInt = Field(description="Epochs between decays.")
    gamma: Gamma = 0.1


@register
class Step(Scheduler):
    name = "step"
    torch_name = f"{_LR}.StepLR"
    summary = "Multiply the rate by `gamma` every `step_size` epochs."
    Params = StepParams

    def emit(self, p: StepParams) -> SchedulerCode:
        return SchedulerCode(
            Call(f"{_LR}.StepLR", (Var("optimizer"),), (("step_size", p.step_size), ("gamma", p.gamma)))
        )


class MultiStepParams(Params):
    milestones: Annotated[list[PosInt], Field(min_length=1)]
    gamma: Gamma = 0.1

    @model_validator(mode="after")
    def _increasing(self) -> MultiStepParams:
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:], strict=False)):
            raise ValueError("`milestones` must be increasing epoch numbers")
        return self


@register
class MultiStep(Scheduler):
    name = "multistep"
    torch_name = f"{_LR}.MultiStepLR"
    summary = "Multiply the rate by `gamma` at each epoch in `milestones`."
    Params = MultiStepParams

    def emit(self, p: MultiStepParams) -> SchedulerCode:
        return SchedulerCode(
            Call(f"{_LR}.MultiStepLR", (Var("optimizer"),), (("milestones", p.milestones), ("gamma", p.gamma)))
        )


class CosineParams(Params):
    t_max: PosInt | None = Field(default=None, description="Epochs of the half cosine; default: all (after warmup).")
    eta_min: NonNegFloat = 0.0


@register
class Cosine(Scheduler):
    name = "cosine"
    torch_name = f"{_LR}.CosineAnnealingLR"
    summary = "Cosine decay from the initial rate to `eta_min` over `t_max` epochs (default: the whole run)."
    Params = CosineParams

    def emit(self, p: CosineParams) -> SchedulerCode:
        t_max = p.t_max if p.t_max is not None else Var("epochs")
        return SchedulerCode(
            Call(f"{_LR}.CosineAnnealingLR", (Var("optimizer"),), (("T_max", t_max), *non_default(p, ["eta_min"])))
        )


class OneCycleParams(Params):
    max_lr: Annotated[float, Field(gt=0.0)] | None = Field(default=None, description="Peak rate; default: `lr`.")
    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    div_factor: Annotated[float, Field(ge=1.0)] = 25.0
    final_div_factor: Annotated[float, Field(ge=1.0)] = 1e4


@register
class OneCycle(Scheduler):
    name = "onecycle"
    torch_name = f"{_LR}.OneCycleLR"
    summary = "One-cycle policy, stepped every batch: warm up to `max_lr`, then anneal (has its own warmup)."
    Params = OneCycleParams
    composable = False

    def emit(self, p: OneCycleParams) -> SchedulerCode:
        max_lr = p.max_lr if p.max_lr is not None else Var("lr")
        kwargs = (
            ("max_lr", max_lr),
            ("epochs", Var("epochs")),
            ("steps_per_epoch", Var("steps_per_epoch")),
            *non_default(p, ["pct_start", "anneal_strategy", "div_factor", "final_div_factor"]),
        )
        return SchedulerCode(Call(f"{_LR}.OneCycleLR", (Var("optimizer"),), kwargs), interval="step")


class PlateauParams(Params):
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    patience: Annotated[int, Field(ge=0, le=10_000)] = 10
    threshold: NonNegFloat = 1e-4
    min_lr: NonNegFloat = 0.0


@register
class Plateau(Scheduler):
    name = "plateau"
    torch_name = f"{_LR}.ReduceLROnPlateau"
    summary = "Multiply the rate by `factor` when the val loss (else train loss) stops improving for `patience` epochs."
    Params = PlateauParams
    composable = False

    def emit(self, p: PlateauParams) -> SchedulerCode:
        kwargs = non_default(p, ["factor", "patience", "threshold", "min_lr"])
        return SchedulerCode(Call(f"{_LR}.ReduceLROnPlateau", (Var("optimizer"),), kwargs), monitors=True)


class LinearParams(Params):
    start_factor: Factor = 0.1
    end_factor: Factor = 1.0
    total_iters: PosInt = Field(default=5, description="Epochs to go from start_factor to end_factor.")


@register
class Linear(Scheduler):
    name = "linear"
    torch_name = f"{_LR}.LinearLR"
    summary = "Linear change of the rate's factor over `total_iters` epochs (a linear warmup from `start_factor`)."
    Params = LinearParams

    def emit(self, p: LinearParams) -> SchedulerCode:
        kwargs = (("start_factor", p.start_factor), ("end_factor", p.end_factor), ("total_iters", p.total_iters))
        return SchedulerCode(Call(f"{_LR}.LinearLR", (Var("optimizer"),), kwargs))
