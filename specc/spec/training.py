"""The `data` and `train` sections of a spec (what dataset.py and train.py are generated from).

Component fields (source, transforms, loss, metrics, optimizer, scheduler) are derived from the
component registry (specc.training): each component's parameter model plus its `type` (`op` for
transforms, as for layers). A component with no required parameter may be written as its bare
name (`loss: cross_entropy`). Adding a component adds it here and to the schema with no edit.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, create_model

from specc.errors import did_you_mean
from specc.ops.base import PosInt
from specc.spec.types import StrictModel
from specc.training.base import DataPath
from specc.training.registry import KIND_WORDS, all_of

NonNegInt = Annotated[int, Field(ge=0, le=2**31 - 1)]
PositiveFloat = Annotated[float, Field(gt=0.0)]

# The key that names a component's type, per kind (transforms are pipeline ops, like layers).
TYPE_KEYS = {
    "source": "type",
    "transform": "op",
    "loss": "type",
    "metric": "type",
    "optimizer": "type",
    "scheduler": "type",
}


@cache
def component_models(kind: str) -> dict[str, type[BaseModel]]:
    """One document model per component of `kind`: its parameters plus the type key."""
    key = TYPE_KEYS[kind]
    models: dict[str, type[BaseModel]] = {}
    suffix = kind.capitalize()
    for name, component in all_of(kind).items():
        class_name = "".join(part.capitalize() for part in name.split("_")) + suffix
        models[name] = create_model(
            class_name,
            __base__=component.Params,
            __doc__=component.summary,
            **{key: (Literal[name], Field(description=f"The {KIND_WORDS[kind]}."))},
        )
    return models


def shorthand_names(kind: str) -> tuple[str, ...]:
    """Components that may be written as a bare name: those without required parameters."""
    return tuple(
        name for name, c in all_of(kind).items() if all(not f.is_required() for f in c.Params.model_fields.values())
    )


def _known(kind: str) -> Callable[[Any], Any]:
    """Check the type name before the union does, so that a typo gets a did-you-mean."""
    key, word = TYPE_KEYS[kind], KIND_WORDS[kind]

    def check(value: Any) -> Any:
        names = list(all_of(kind))
        if isinstance(value, dict):
            if key not in value:
                raise ValueError(f"a {word} needs a `{key}` key: one of {', '.join(names)}")
            given = value[key]
            if not isinstance(given, str):
                return value
        elif isinstance(value, str):
            given = value
            if given in names and given not in shorthand_names(kind):
                required = [n for n, f in all_of(kind)[given].Params.model_fields.items() if f.is_required()]
                fields = ", ".join(
                    f"{(f.alias or n)}: ..."
                    for n, f in all_of(kind)[given].Params.model_fields.items()
                    if n in required
                )
                raise ValueError(f"{word} `{given}` has required parameters: write {{{key}: {given}, {fields}}}")
        else:
            return value
        if given not in names:
            hint = did_you_mean(given, names)
            raise ValueError(f"unknown {word} `{given}`" + (f" ({hint})" if hint else f"; known: {', '.join(names)}"))
        return value

    return check


def component_field(kind: str) -> Any:
    """The annotation of a field holding one component of `kind`."""
    key = TYPE_KEYS[kind]

    def tag(value: Any) -> str | None:
        if isinstance(value, str):
            return "shorthand"
        if isinstance(value, dict):
            given = value.get(key)
            return given if isinstance(given, str) else None
        return None

    members: list[Any] = [Annotated[model, Tag(name)] for name, model in component_models(kind).items()]
    short = shorthand_names(kind)
    if short:
        members.append(Annotated[Literal[short], Tag("shorthand")])
    union = Annotated[Union[tuple(members)], Discriminator(tag)]  # noqa: UP007
    return Annotated[union, BeforeValidator(_known(kind))]


SourceItem = component_field("source")
TransformItem = component_field("transform")
LossItem = component_field("loss")
MetricItem = component_field("metric")
OptimizerItem = component_field("optimizer")
SchedulerItem = component_field("scheduler")


class Holdout(StrictModel):
    """Hold out a fixed random part of the training split for validation."""

    fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    seed: NonNegInt = Field(default=0, description="Seed of the split (the same split on every run).")


class TransformsSpec(StrictModel):
    """Per-split transform pipelines (torchvision.transforms.v2), applied in order."""

    train: Annotated[list[TransformItem], Field(max_length=64)] | None = Field(  # type: ignore[valid-type]
        default=None, description="Training transforms; default: `to_tensor` for images."
    )
    eval: Annotated[list[TransformItem], Field(max_length=64)] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Val/test transforms; default: the train pipeline without its augmentations "
        "(random crops become centre crops).",
    )


class LoaderSpec(StrictModel):
    """torch.utils.data.DataLoader settings."""

    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 64
    eval_batch_size: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None, description="Batch size for val/test; default: batch_size."
    )
    shuffle: bool = True
    num_workers: Annotated[int, Field(ge=0, le=1024)] | Literal["auto"] = Field(
        default="auto", description="`auto`: none when training on CPU (it needs the cores), else up to 8 per process."
    )
    pin_memory: bool | None = Field(default=None, description="Default: on when training on CUDA.")
    persistent_workers: bool | None = Field(
        default=None, description="Default: on when num_workers > 0 (off in deterministic mode)."
    )
    drop_last: bool = False
    prefetch_factor: PosInt | None = None


class DataSpec(StrictModel):
    """Where the data comes from and how it is transformed and loaded (-> dataset.py)."""

    source: SourceItem  # type: ignore[valid-type]
    root: DataPath = Field(default="data", description="Data root (train.py's --data-root).")
    transforms: TransformsSpec = Field(default_factory=TransformsSpec)
    val: Holdout | Literal["auto", "val", "test"] | None = Field(
        default="auto",
        description="Validation set: a holdout of train, the source's own `val` or `test` split, or null "
        "for none; `auto`: the source's val split if it has one, else a 10% holdout.",
    )
    test: bool = Field(default=True, description="Evaluate on the source's test split after training.")
    loader: LoaderSpec = Field(default_factory=LoaderSpec)


class Warmup(StrictModel):
    """A linear warmup before the scheduler (torch's LinearLR, then SequentialLR)."""

    epochs: Annotated[int, Field(ge=1, le=100_000)]
    start_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1


class CheckpointSpec(StrictModel):
    every: Annotated[int, Field(ge=1, le=100_000)] = Field(default=1, description="Epochs between checkpoints.")
    keep: Annotated[int, Field(ge=1, le=1000)] = Field(default=3, description="How many recent checkpoints to keep.")


class TrainSpec(StrictModel):
    """How to train (-> train.py); every value is the default of a command-line flag where one exists."""

    epochs: Annotated[int, Field(ge=1, le=1_000_000)] = 10
    seed: NonNegInt = 0
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda|cuda:[0-9]{1,3})$")] = "auto"
    loss: LossItem = "cross_entropy"  # type: ignore[valid-type]
    optimizer: OptimizerItem = "adam"  # type: ignore[valid-type]
    scheduler: SchedulerItem | None = None  # type: ignore[valid-type]
    warmup: Warmup | None = None
    clip_grad_norm: PositiveFloat | None = Field(default=None, description="Clip the gradients' total norm.")
    metrics: Annotated[list[MetricItem], Field(max_length=32)] | None = Field(  # type: ignore[valid-type]
        default=None, description="Default: accuracy for classification, mse and mae for regression."
    )
    amp: Literal["none", "bf16", "fp16"] = Field(default="none", description="Mixed precision (CUDA only).")
    compile: bool = Field(default=False, description="torch.compile the model (slower on CPU for small models).")
    channels_last: bool = False
    deterministic: bool = Field(default=False, description="torch.use_deterministic_algorithms, for exact reruns.")
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    log_interval: Annotated[float, Field(gt=0.0, le=86_400.0)] = Field(
        default=10.0, description="Seconds between progress lines."
    )
    output_dir: DataPath | None = Field(default=None, description="Default: runs/<model name, lower case>.")
