"""Stage 4b: the data and train sections against the model. Resolves every component, runs the
transforms' shape rules from the source's samples to the model's input, derives the eval pipeline,
and checks the loss and metrics against the model's output. Pure; raises located `SpecError`s.

`plan` is called by `analyze` (so `specc validate` reports these errors) and again by the code
generator of dataset.py and train.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from specc.errors import SpecError
from specc.ir import Graph
from specc.load import Document, JsonPath
from specc.spec.document import Spec
from specc.spec.training import TYPE_KEYS, DataSpec, Holdout, TrainSpec
from specc.training.base import Loss, Metric, Sample, ShapeError, Transform
from specc.training.registry import get

_KIND_TEXT = {"pil": "PIL images", "uint8": "uint8 image tensors", "float": "float tensors", "any": "tensors"}
_FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")


@dataclass(frozen=True)
class Use:
    """One component as the spec uses it: the component, its validated parameters, where it was written."""

    component: Any  # a Component subclass instance (Source, Transform, Loss, ...)
    params: Any  # its Params
    path: JsonPath

    @property
    def name(self) -> str:
        return str(self.component.name)


@dataclass(frozen=True)
class Plan:
    """Everything the generators of dataset.py and train.py need, checked."""

    model: str
    input_name: str
    input_shape: tuple[int, ...]
    input_dtype: str
    output_shape: tuple[int, ...]
    data: DataSpec
    train: TrainSpec
    source: Use
    train_transforms: list[Use]
    eval_transforms: list[Use]
    train_inputs: list[Sample]  # what each train transform receives
    eval_inputs: list[Sample]
    sample: Sample  # what the train pipeline produces
    val: Holdout | str | None  # a holdout of train, the source's "val" or "test" split, or none
    test: bool  # evaluate on the source's test split after training
    loss: Use
    metrics: list[Use]
    optimizer: Use
    scheduler: Use | None
    output_dir: str
    pretrained: bool = False  # model.py's build_model takes `pretrained` and `weights_file`


def plan(spec: Spec, graph: Graph, doc: Document) -> Plan | None:
    """The checked plan, or None if the spec has no data section (then only model.py is generated)."""
    if spec.data is None:
        if spec.train is not None:
            raise SpecError("E103", "a `train` section needs a `data` section to train on", doc.loc(("train",)))
        return None
    data, train = spec.data, spec.train or TrainSpec()
    if len(graph.inputs) != 1:
        raise SpecError(
            "E206",
            f"train.py feeds one input per sample, but the model has {len(graph.inputs)} inputs",
            doc.loc(("inputs",)),
        )
    input_name, input_type = next(iter(graph.inputs.items()))
    output = graph.node(graph.output).out
    assert output is not None

    source = _use("source", data.source, ("data", "source"), doc)
    raw = source.component.sample(source.params)
    if data.transforms.train is not None:
        train_steps = [
            _use("transform", t, ("data", "transforms", "train", i), doc) for i, t in enumerate(data.transforms.train)
        ]
    else:
        train_steps = [
            _default_use("transform", name, params, ("data", "source"))
            for name, params in source.component.default_transforms(source.params)
        ]
    sample, before = _run(train_steps, raw, doc)
    if data.transforms.eval is not None:
        eval_steps = [
            _use("transform", t, ("data", "transforms", "eval", i), doc) for i, t in enumerate(data.transforms.eval)
        ]
    else:
        eval_steps = []
        for step, x in zip(train_steps, before, strict=True):
            for name, params in step.component.eval_counterpart(step.params, x):
                eval_steps.append(_default_use("transform", name, params, step.path))
    eval_sample, eval_before = _run(eval_steps, raw, doc)

    for which, produced in (("train", sample), ("eval", eval_sample)):
        where = ("data", "transforms", which) if _given(data, which) else ("data", "source")
        _check_input(produced, input_type.shape, input_type.dtype, which, source, where, doc)

    splits = source.component.splits(source.params)
    val = _val(data, splits, source, doc)
    test = data.test and "test" in splits and val != "test"

    loss = _use("loss", train.loss, ("train", "loss"), doc)
    try:
        loss.component.check(loss.params, output.shape, raw.num_classes)
    except ShapeError as exc:
        at = graph.node(graph.output).path if exc.code == "E201" else loss.path
        raise SpecError(
            exc.code,
            exc.message,
            doc.loc(at),
            hint=exc.hint,
            notes=[f"{doc.loc(source.path)}: the data is {source.component.description}"] if exc.code == "E201" else [],
        ) from None
    metrics = _metrics(train, loss, output.shape, doc)
    optimizer = _use("optimizer", train.optimizer, ("train", "optimizer"), doc)
    scheduler = _use("scheduler", train.scheduler, ("train", "scheduler"), doc) if train.scheduler is not None else None
    if train.warmup is not None and scheduler is not None and not scheduler.component.composable:
        raise SpecError(
            "E104",
            f"`warmup` cannot precede the `{scheduler.name}` scheduler",
            doc.loc(("train", "warmup")),
            hint="onecycle has its own warmup (pct_start); plateau reacts to the loss, not to epochs",
        )
    return Plan(
        model=graph.name,
        input_name=input_name,
        input_shape=tuple(input_type.shape),
        input_dtype=input_type.dtype,
        output_shape=tuple(output.shape),
        data=data,
        train=train,
        source=source,
        train_transforms=train_steps,
        eval_transforms=eval_steps,
        train_inputs=before,
        eval_inputs=eval_before,
        sample=sample,
        val=val,
        test=test,
        loss=loss,
        metrics=metrics,
        optimizer=optimizer,
        scheduler=scheduler,
        output_dir=train.output_dir or f"runs/{graph.name.lower()}",
        pretrained=spec.pretrained is not None or bool(spec.freeze),
    )


def _given(data: DataSpec, which: str) -> bool:
    return getattr(data.transforms, which) is not None


def _use(kind: str, item: Any, path: JsonPath, doc: Document) -> Use:
    """A validated spec item (a bare name, or a document model carrying the type key) as a Use."""
    if isinstance(item, str):
        component = get(kind, item)
        assert component is not None
        return Use(component, component.Params(), path)
    assert isinstance(item, BaseModel)
    name = getattr(item, TYPE_KEYS[kind])
    component = get(kind, name)
    assert component is not None
    values = item.model_dump(by_alias=True, exclude={TYPE_KEYS[kind]}, exclude_unset=True)
    return Use(component, component.Params.model_validate(values), path)


def _default_use(kind: str, name: str, params: dict[str, Any], path: JsonPath) -> Use:
    """A component the compiler adds (default or derived transforms); `path` is what caused it."""
    component = get(kind, name)
    assert component is not None, name
    try:
        return Use(component, component.Params.model_validate(params), path)
    except ValidationError as exc:  # a compiler bug: derived parameters must be valid
        raise AssertionError(f"derived {kind} {name}{params} is invalid: {exc}") from None


def _run(steps: list[Use], x: Sample, doc: Document) -> tuple[Sample, list[Sample]]:
    """Apply the transforms' shape rules; also returns the sample each step receives."""
    seen: list[Sample] = []
    for step in steps:
        seen.append(x)
        t: Transform = step.component
        if not x.images:
            raise SpecError(
                "E104",
                f"`{t.name}` is an image transform, but this data gives feature vectors ({x.describe()})",
                doc.loc(step.path),
                hint="tabular data takes no transforms",
            )
        if x.kind not in t.needs:
            raise SpecError(
                "E205",
                f"`{t.name}` needs {' or '.join(_KIND_TEXT[k] for k in t.needs if k != 'any')}, "
                f"but here the samples are {_KIND_TEXT[x.kind]}",
                doc.loc(step.path),
                hint="put `to_tensor` before it" if x.kind == "pil" else None,
            )
        try:
            x = t.apply(step.params, x)
        except ShapeError as exc:
            where = (*step.path, exc.field) if exc.field and step.path[:2] == ("data", "transforms") else step.path
            raise SpecError(exc.code, f"{t.name}: {exc.message}", doc.loc(where), hint=exc.hint) from None
    return x, seen


def _check_input(
    x: Sample,
    want: tuple[int, ...],
    dtype: str,
    which: str,
    source: Use,
    where: JsonPath,
    doc: Document,
) -> None:
    """The samples a pipeline produces must be what the model's input declares."""
    pipeline = f"data.transforms.{which}" if where[-1] == which else "the data"
    note = [f"{doc.loc(('input',))}: the model's input is declared here"]
    if x.kind in ("pil", "uint8") and dtype in _FLOAT_DTYPES:
        raise SpecError(
            "E205",
            f"{pipeline} gives {_KIND_TEXT[x.kind]}, but the model takes {dtype} tensors",
            doc.loc(where),
            hint=f"add `to_tensor` to data.transforms.{which}",
            notes=note,
        )
    if x.kind in ("pil", "uint8", "float") and dtype not in _FLOAT_DTYPES:
        raise SpecError(
            "E205",
            f"the model takes {dtype} input, but {source.component.description} gives images or numbers",
            doc.loc(where),
            notes=note,
        )
    if x.shape is None:
        return
    shown = "x".join(str(d) for d in want)
    if len(x.shape) != len(want):
        raise SpecError(
            "E203",
            f"{pipeline} gives samples of shape {x.describe()}, but the model's input is {shown}",
            doc.loc(where),
            notes=note,
        )
    if all(d is None or d == w for d, w in zip(x.shape, want, strict=True)):
        return
    hint = None
    if len(want) == 3 and x.shape[0] in (None, want[0]):
        hint = f"add `{_fit(x.shape[1], x.shape[2], want[1], want[2])}` to data.transforms.{which}"
    elif len(want) == 3 and x.shape[0] is not None and want[0] in (1, 3):
        hint = f"add `{{op: grayscale, num_output_channels: {want[0]}}}` to data.transforms.{which}"
    raise SpecError(
        "E201",
        f"{pipeline} gives {x.describe()} samples, but the model's input is {shown}",
        doc.loc(where),
        hint=hint,
        notes=note,
    )


def _fit(h: int | None, w: int | None, want_h: int, want_w: int) -> str:
    """A transform that takes h x w images to want_h x want_w: a centred pad where one fits, else a resize."""
    resize = f"{{op: resize, size: [{want_h}, {want_w}]}}"
    if h is None or w is None or want_h < h or want_w < w or (want_h - h) % 2 or (want_w - w) % 2:
        return resize
    side, top = (want_w - w) // 2, (want_h - h) // 2
    padding = side if side == top else [side, top]
    return f"{{op: pad, padding: {padding}}}` or `{resize}"


def _val(data: DataSpec, splits: tuple[str, ...], source: Use, doc: Document) -> Holdout | str | None:
    if data.val == "auto":
        return "val" if "val" in splits else Holdout()
    if isinstance(data.val, str) and data.val not in splits:
        raise SpecError(
            "E104",
            f"`val: {data.val}` names a split that {source.component.description} does not have "
            f"(it has {', '.join(splits)})",
            doc.loc(("data", "val")),
            hint="use a holdout of the training split instead: `val: {fraction: 0.1}`",
        )
    return data.val


def _metrics(train: TrainSpec, loss: Use, output: tuple[int, ...], doc: Document) -> list[Use]:
    loss_fn: Loss = loss.component
    if train.metrics is None:
        metrics = [_default_use("metric", name, params, loss.path) for name, params in loss_fn.default_metrics]
    else:
        metrics = [_use("metric", m, ("train", "metrics", i), doc) for i, m in enumerate(train.metrics)]
    keys: dict[str, JsonPath] = {}
    for m in metrics:
        metric: Metric = m.component
        if loss_fn.task not in metric.tasks:
            raise SpecError(
                "E104",
                f"metric `{metric.name}` does not apply to {loss_fn.task} (the loss is `{loss_fn.name}`)",
                doc.loc(m.path),
            )
        try:
            metric.check(m.params, output)
        except ShapeError as exc:
            raise SpecError(exc.code, exc.message, doc.loc(m.path), hint=exc.hint) from None
        key = metric.emit(m.params).key
        if key in keys:
            raise SpecError("E104", f"metric `{key}` is listed twice", doc.loc(m.path))
        keys[key] = m.path
    return metrics
