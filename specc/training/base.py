"""The contract of the data and training components: sources, transforms, losses, metrics, optimizers
and schedulers. One component = one class: a strict parameter model, a summary, and an emitter.

A component never imports torch. Its emitter returns code as data (`Call`, `Var`), which the code
generator prints; spec values reach generated code only through `repr()` (see `code`), and the
only bare names are `Var`s, which the compiler chooses (never the spec).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from specc.ops.base import ShapeError

__all__ = [
    "Call",
    "Component",
    "DataPath",
    "Loss",
    "Metric",
    "Optimizer",
    "Params",
    "Sample",
    "Scheduler",
    "ShapeError",
    "Source",
    "Transform",
    "Var",
    "code",
    "non_default",
]

Task = Literal["classification", "binary", "regression", "language_model"]
# What one sample is before/after a transform: a PIL image, a uint8 image tensor, a float tensor,
# or unknown (a user's tensors or class).
SampleKind = Literal["pil", "uint8", "float", "any"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _path(value: str) -> str:
    if not value.strip():
        raise ValueError("a path must not be blank")
    return value


# A file or folder path from the spec; relative paths are relative to the data root at run time.
DataPath = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_path)]


class Params(BaseModel):
    """Base of every component's parameter model: strict types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


@dataclass(frozen=True)
class Var:
    """A variable of the generated code, printed bare. Only the compiler makes these."""

    name: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"not a variable name: {self.name!r}")


@dataclass(frozen=True)
class Call:
    """`target(*args, **kwargs)` in generated code. Values are printed by `code`."""

    target: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.target):
            raise ValueError(f"not a callable's name: {self.target!r}")

    def render(self) -> str:
        parts = [code(a) for a in self.args]
        parts += [f"{k}={code(v)}" for k, v in self.kwargs]
        return f"{self.target}({', '.join(parts)})"


def code(value: Any) -> str:
    """Python source for a value: `Var`/`Call` as code; numbers, strings, bools, None and lists,
    tuples and dicts of them through `repr()`. Anything else is a compiler bug."""
    if isinstance(value, Var):
        return value.name
    if isinstance(value, Call):
        return value.render()
    if isinstance(value, list):
        return "[" + ", ".join(code(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(code(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{code(k)}: {code(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(f"cannot print {type(value).__name__} into generated code")


def non_default(params: Params, names: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments for `names`, leaving out those equal to the parameter model's default."""
    fields = type(params).model_fields
    return tuple((n, getattr(params, n)) for n in names if getattr(params, n) != fields[n].default)


@dataclass(frozen=True)
class Sample:
    """What one sample `x` looks like at a point of the data pipeline, as far as the compiler knows.

    `shape` is per sample (no batch dim); a `None` entry is a size known only at run time, and a
    `None` shape means even the rank is unknown.
    """

    shape: tuple[int | None, ...] | None
    kind: SampleKind
    images: bool = True  # False for feature vectors (csv): image transforms do not apply
    num_classes: int | None = None

    def describe(self) -> str:
        if self.shape is None:
            return "of unknown shape"
        return "x".join("?" if d is None else str(d) for d in self.shape)

    @property
    def known(self) -> bool:
        return self.shape is not None and all(d is not None for d in self.shape)


class Component:
    """Base of every component. Subclasses set the ClassVars; kinds add their own hooks."""

    kind: ClassVar[str] = ""
    name: ClassVar[str]
    Params: ClassVar[type[Params]] = Params
    summary: ClassVar[str] = ""
    torch_name: ClassVar[str] = ""  # for the docs' tables


# ---------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SplitCode:
    """The body of `load_split(split, root, transform, download)` in dataset.py, and its imports."""

    lines: list[str]
    imports: frozenset[str] = frozenset()
    uses: frozenset[str] = frozenset()  # helper functions of dataset.py it needs (see codegen)


class Source(Component):
    """Where samples come from. `load` emits the body of dataset.py's `load_split`."""

    kind = "source"
    description: ClassVar[str] = ""  # e.g. "the MNIST dataset (torchvision)", for docstrings

    def splits(self, p: Any) -> tuple[str, ...]:
        """The source's own splits, among "train", "val" and "test" ("train" always)."""
        return ("train", "test")

    def sample(self, p: Any) -> Sample:
        """What one raw sample looks like before any transform."""
        raise NotImplementedError

    def download(self, p: Any) -> bool | None:
        """The spec's download flag, or None if the source cannot download."""
        return None

    def load(self, p: Any) -> SplitCode:
        raise NotImplementedError

    def default_transforms(self, p: Any) -> list[tuple[str, dict[str, Any]]]:
        """The train transforms used when the spec gives none."""
        return [("to_tensor", {})] if self.sample(p).kind in ("pil", "uint8") else []


# ------------------------------------------------------------------------------------------- transforms


class Transform(Component):
    """One torchvision.transforms.v2 step: a shape rule and the constructor call."""

    kind = "transform"
    random: ClassVar[bool] = False  # an augmentation: left out of (or replaced in) eval pipelines
    needs: ClassVar[tuple[SampleKind, ...]] = ("pil", "uint8", "float", "any")

    def apply(self, p: Any, x: Sample) -> Sample:
        """The sample after this transform; raises ShapeError if it cannot apply."""
        return x

    def emit(self, p: Any, x: Sample) -> list[Call]:
        """The v2 constructor call(s) applied to one sample `x`."""
        raise NotImplementedError

    def batch_form(self, p: Any, x: Sample) -> tuple[list[Call], list[Call]] | None:
        """(per-sample calls, per-batch calls) when the work can be done on whole batches: elementwise,
        deterministic and per channel, so a batch gives the same values as its samples one by one.
        None (the default) when it must run per sample. The generator moves the longest such tail
        of a pipeline onto batches on the training device."""
        return None

    def eval_counterpart(self, p: Any, x: Sample) -> list[tuple[str, dict[str, Any]]]:
        """The deterministic transforms that replace this one in a derived eval pipeline."""
        return [] if self.random else [(self.name, p.model_dump())]


# ----------------------------------------------------------------------------------------------- losses


@dataclass(frozen=True)
class TargetCode:
    """How train.py turns a batch's targets into what the loss and metrics take."""

    expression: str  # over `output` and `target`
    dtype: Literal["int64", "float32"]
    output: str = "output"  # the outputs as the loss and metrics take them (over `output`)


class Loss(Component):
    kind = "loss"
    task: ClassVar[Task]
    default_metrics: ClassVar[tuple[tuple[str, dict[str, Any]], ...]] = ()  # (metric, params)

    def emit(self, p: Any) -> Call:
        raise NotImplementedError

    def target(self, p: Any) -> TargetCode:
        if self.task == "classification":
            return TargetCode("target", "int64")
        return TargetCode("target.to(output.dtype).view_as(output)", "float32")

    def check(self, p: Any, output: tuple[int, ...], num_classes: int | None) -> None:
        """Raise ShapeError if the model's per-sample output cannot feed this loss."""
        if self.task == "classification":
            if len(output) < 1:
                raise ShapeError("E203", f"{self.name} needs class scores of shape (B, C), but the model outputs (B,)")
            if num_classes is not None and output[0] != num_classes:
                raise ShapeError(
                    "E201",
                    f"the model outputs {output[0]} class scores per sample, but the data has {num_classes} classes",
                )


# ---------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricCode:
    """A metric as two sums over a batch, accumulated over an epoch and divided at its end."""

    key: str  # the column in metrics.jsonl, after "val_" / "test_"
    total: str  # expression over `output`, `target` (as prepared for the loss)
    count: str
    final: str = "value"  # the reported value, over `value` = sum(total) / sum(count) (and `math`)


class Metric(Component):
    kind = "metric"
    tasks: ClassVar[tuple[Task, ...]]

    def emit(self, p: Any) -> MetricCode:
        raise NotImplementedError

    def check(self, p: Any, output: tuple[int, ...]) -> None:
        """Raise ShapeError if the model's output cannot give this metric."""


# ------------------------------------------------------------------------------------------- optimizers


class Optimizer(Component):
    kind = "optimizer"

    def emit(self, p: Any) -> Call:
        """The constructor; `Var("params")` are the trainable parameters and `Var("lr")` the rate."""
        raise NotImplementedError


# ------------------------------------------------------------------------------------------- schedulers


@dataclass(frozen=True)
class SchedulerCode:
    call: Call  # over Vars: optimizer, lr, epochs (after warmup), steps_per_epoch
    interval: Literal["epoch", "step"] = "epoch"
    monitors: bool = False  # step(...) takes the monitored value (ReduceLROnPlateau)


class Scheduler(Component):
    kind = "scheduler"
    composable: ClassVar[bool] = True  # may follow a linear warmup (SequentialLR)

    def emit(self, p: Any) -> SchedulerCode:
        raise NotImplementedError
