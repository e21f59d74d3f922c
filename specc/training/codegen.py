"""Stage 5b: a checked `Plan` -> the text of dataset.py and train.py.

Every decision is made here, in Python: which code each component emits, which helpers dataset.py
needs, how a transform pipeline splits into per-sample and per-batch parts, and every default of
train.py's command line. The templates only print the plain data built here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from specc.codegen import DTYPE_CODE, Header, environment
from specc.spec.training import Holdout
from specc.training.base import Call, MetricCode, Sample, Source, code
from specc.training.plan import Plan, Use

_STDLIB = "stdlib"
_THIRD_PARTY = "third_party"


@dataclass(frozen=True)
class DatasetContext:
    header: Header
    docstring: str
    imports: list[str]
    constants: list[tuple[str, str, str]]  # name, value (code), comment
    train_transform: list[str]  # function bodies
    eval_transform: list[str]
    train_batch_transform: list[str]
    eval_batch_transform: list[str]
    splits: str
    load_split: list[str]
    build_datasets: list[str]
    helpers: list[str]  # macros of dataset_helpers.jinja to print, in order


@dataclass(frozen=True)
class Flag:
    """One option of train.py's command line."""

    name: str
    code: str  # the add_argument arguments after the name


@dataclass(frozen=True)
class TrainContext:
    header: Header
    docstring: str
    imports: list[str]
    constants: list[tuple[str, str, str]]
    description: str
    flags: list[Flag]
    loss: str
    output: str
    target: str
    optimizer: str
    scheduler: list[str]
    metrics: list[MetricCode]
    final_metric: list[str]  # the body of final_metric(key, value)
    functions: list[str]  # more functions (a language model's vocabulary check and sampling)
    after_build: list[str]  # lines of train() after the trainer is built
    after_test: list[str]  # lines of train() after the test evaluation
    build_model: str  # the call that builds the model (with pretrained-weight options for fine-tuning)


def render_dataset(plan: Plan, head: Header) -> str:
    """The unformatted text of dataset.py."""
    return environment().get_template("dataset.py.jinja").render(ctx=dataset_context(plan, head))


def render_train(plan: Plan, head: Header) -> str:
    """The unformatted text of train.py."""
    return environment().get_template("train.py.jinja").render(ctx=train_context(plan, head))


# ------------------------------------------------------------------------------------------ dataset.py


def dataset_context(plan: Plan, head: Header) -> DatasetContext:
    source: Source = plan.source.component
    load = source.load(plan.source.params)
    train_sample, train_batch = split_pipeline(plan.train_transforms, plan.train_inputs)
    eval_sample, eval_batch = split_pipeline(plan.eval_transforms, plan.eval_inputs)
    loader = plan.data.loader
    holdout = plan.val if isinstance(plan.val, Holdout) else None
    constants = [
        ("DATA_ROOT", code(plan.data.root), "relative to the working directory, unless absolute"),
        ("DOWNLOAD", code(bool(source.download(plan.source.params))), _download_comment(plan)),
        ("SAMPLE_SHAPE", code(plan.input_shape), "one sample after all transforms: the model's input"),
    ]
    if holdout is not None:
        constants += [
            ("VAL_FRACTION", code(holdout.fraction), "of the training split, held out for validation"),
            ("VAL_SEED", code(holdout.seed), "the same split on every run"),
        ]
    constants += [
        ("BATCH_SIZE", code(loader.batch_size), ""),
        ("EVAL_BATCH_SIZE", code(loader.eval_batch_size or loader.batch_size), ""),
        (
            "NUM_WORKERS",
            code(loader.num_workers),
            "auto: none on CPU (training needs the cores), else up to 8 per process"
            if loader.num_workers == "auto"
            else "",
        ),
        ("SHUFFLE", code(loader.shuffle), ""),
        ("DROP_LAST", code(loader.drop_last), ""),
        ("PIN_MEMORY", code(loader.pin_memory), "None: on when training on CUDA" if loader.pin_memory is None else ""),
        (
            "PERSISTENT_WORKERS",
            code(loader.persistent_workers),
            "None: on with workers, except in deterministic mode" if loader.persistent_workers is None else "",
        ),
        (
            "PREFETCH_FACTOR",
            code(loader.prefetch_factor),
            "None: DataLoader's default" if loader.prefetch_factor is None else "",
        ),
    ]
    helpers = (["holdout"] if holdout is not None else []) + sorted(load.uses)
    stdlib = {
        "import itertools",
        "import os",
        "from collections.abc import Callable, Iterator",
        "from typing import Any",
    }
    stdlib |= set(load.imports)
    third = {"import torch", "from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset"}
    own = source.splits(plan.source.params)
    return DatasetContext(
        header=head,
        docstring=_dataset_docstring(plan, bool(train_batch or eval_batch)),
        imports=import_block({_STDLIB: stdlib, _THIRD_PARTY: third}),
        constants=constants,
        train_transform=_pipeline_body(train_sample),
        eval_transform=_pipeline_body(eval_sample),
        train_batch_transform=_pipeline_body(train_batch),
        eval_batch_transform=_pipeline_body(eval_batch),
        splits=" or ".join(f'"{s}"' for s in own),
        load_split=load.lines,
        build_datasets=_build_lines(plan),
        helpers=helpers,
    )


def split_pipeline(steps: list[Use], inputs: list[Sample]) -> tuple[list[Call], list[Call]]:
    """(per-sample calls, per-batch calls): the pipeline's longest tail of elementwise transforms
    (to float, normalize) runs on whole batches on the training device, the rest per sample."""
    batch: list[Call] = []
    head: list[Call] = []
    cut = len(steps)
    while cut > 0:
        step, x = steps[cut - 1], inputs[cut - 1]
        form = step.component.batch_form(step.params, x)
        if form is None:
            break
        sample_part, batch_part = form
        batch = batch_part + batch
        cut -= 1
        if sample_part:
            head = sample_part
            break
    per_sample = [
        c for step, x in zip(steps[:cut], inputs[:cut], strict=True) for c in step.component.emit(step.params, x)
    ]
    return per_sample + head, batch


def _pipeline_body(calls: list[Call]) -> list[str]:
    if not calls:
        return ["return None"]
    return [
        "from torchvision.transforms import v2",
        "",
        "return v2.Compose(",
        "    [",
        *(f"        {call.render()}," for call in calls),
        "    ]",
        ")",
    ]


def _build_lines(plan: Plan) -> list[str]:
    lines = ['train = load_split("train", root, train_transform(), download)']
    sets = ['"train": train']
    if isinstance(plan.val, Holdout):
        lines += [
            "train_indices, val_indices = holdout(len(train), VAL_FRACTION, VAL_SEED)",
            'val = load_split("train", root, eval_transform(), download)',
        ]
        sets = ['"train": Subset(train, train_indices)', '"val": Subset(val, val_indices)']
    elif plan.val is not None:
        sets.append(f'"val": load_split({plan.val!r}, root, eval_transform(), download)')
    if plan.test:
        sets.append('"test": load_split("test", root, eval_transform(), download)')
    return [*lines, "return {" + ", ".join(sets) + "}"]


def _download_comment(plan: Plan) -> str:
    if plan.source.component.download(plan.source.params) is None:
        return f"{plan.source.component.description} is never downloaded"
    return "fetch missing files; present files are never fetched again"


def _dataset_docstring(plan: Plan, batched: bool) -> str:
    lines = [
        f"Data for {plan.model}: {plan.source.component.description}, its transforms and its loaders.",
        "",
        "`build_datasets()` returns the train/val/test sets and `build_loaders()` their DataLoaders;",
        "torchvision is imported only inside the functions that use it. `python dataset.py` loads the",
        "data once and prints what it found.",
    ]
    if batched:
        lines += [
            "",
            "The elementwise end of each pipeline (conversion to float, normalization) is applied by",
            "train.py to whole batches on the training device (`*_batch_transform`): the same values as",
            "per sample, at a fraction of the cost.",
        ]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- train.py


def train_context(plan: Plan, head: Header) -> TrainContext:
    optimizer = plan.optimizer.component.emit(plan.optimizer.params)
    metrics = [m.component.emit(m.params) for m in plan.metrics]
    scheduler_code = plan.scheduler.component.emit(plan.scheduler.params) if plan.scheduler is not None else None
    constants = [
        ("SPEC_SHA256", code(head.sha256), ""),
        ("MODEL_NAME", code(plan.model), ""),
        ("INPUT_SHAPE", code(plan.input_shape), "one sample, as the model takes it"),
        ("INPUT_DTYPE", DTYPE_CODE[plan.input_dtype], ""),
        ("METRICS", code([m.key for m in metrics]), "the keys of batch_metrics, in order"),
        (
            "SCHEDULER_INTERVAL",
            code(scheduler_code.interval if scheduler_code else "epoch"),
            'the scheduler steps after every "epoch", or every "step" (batch)',
        ),
        (
            "SCHEDULER_MONITORS",
            code(bool(scheduler_code and scheduler_code.monitors)),
            "scheduler.step() takes the val loss (else the train loss)",
        ),
        *(
            [("VOCAB_SIZE", code(plan.output_shape[-1]), "the model's logits per position: one per token")]
            if _language_model(plan)
            else []
        ),
        ("CHECKPOINT_FORMAT", "1", ""),
        ("CHECKPOINT_NAME", 're.compile(r"^checkpoint-epoch(\\d+)-step(\\d+)\\.pt$")', ""),
        ("PARTIAL_WRITE_NAME", 're.compile(r"^\\.[\\w.-]+\\.\\d+\\.tmp$")', "what write_atomic leaves if killed"),
        ("RUN_FILE", code("specc-run.json"), "marks --output-dir as a run of this spec"),
    ]
    stdlib = {
        "import argparse",
        "import ctypes",
        "import gc",
        "import hashlib",
        "import json",
        "import math",
        "import os",
        "import pickle",
        "import random",
        "import re",
        "import signal",
        "import sys",
        "import time",
        "from dataclasses import dataclass, field",
        "from pathlib import Path",
        "from typing import Any",
    }
    # The build's own dataset.py and model.py sort with the third-party imports, as isort and ruff
    # place modules they do not know.
    third = {"import torch", "import torch.distributed as dist", "from torch import nn"}
    model_imports = "PRETRAINED_FILE, build_model" if plan.pretrained else "build_model"
    third |= {"import dataset", f"from model import {model_imports}"}
    return TrainContext(
        header=head,
        docstring=_train_docstring(plan),
        imports=import_block({_STDLIB: stdlib, _THIRD_PARTY: third}),
        constants=constants,
        description=repr(f"Train {plan.model} (generated by specc from {head.spec_file})."),
        flags=_flags(plan),
        loss=plan.loss.component.emit(plan.loss.params).render(),
        output=plan.loss.component.target(plan.loss.params).output,
        target=plan.loss.component.target(plan.loss.params).expression,
        optimizer=optimizer.render(),
        scheduler=_scheduler_lines(plan, scheduler_code.call if scheduler_code else None),
        metrics=metrics,
        final_metric=_final_metric(metrics),
        functions=_LM_FUNCTIONS if _language_model(plan) else [],
        after_build=['trainer.vocab = check_vocab(sets["train"])'] if _language_model(plan) else [],
        after_test=_LM_AFTER_TEST if _language_model(plan) else [],
        build_model=(
            "build_model(pretrained=args.pretrained, weights_file=args.weights_file)"
            if plan.pretrained
            else "build_model()"
        ),
    )


def _flags(plan: Plan) -> list[Flag]:
    t = plan.train
    source = plan.source.component
    can_download = source.download(plan.source.params) is not None
    lr = plan.optimizer.params.lr

    def flag(name: str, *parts: str) -> Flag:
        return Flag(name, ", ".join(parts))

    return [
        flag("--epochs", "type=int", f"default={t.epochs!r}", 'help="epochs to train in total"'),
        flag("--batch-size", "type=int", "default=dataset.BATCH_SIZE", 'help="batch size per process"'),
        flag("--lr", "type=float", f"default={lr!r}", 'help="learning rate"'),
        flag("--device", f"default={t.device!r}", 'help="auto, cpu, cuda or cuda:N"'),
        flag("--data-root", "default=dataset.DATA_ROOT", 'help="the folder that holds the data"'),
        flag(
            "--download",
            "action=argparse.BooleanOptionalAction",
            "default=dataset.DOWNLOAD",
            'help="fetch missing dataset files (present files are not fetched again)"'
            if can_download
            else f"help={f'no effect: {source.description} is not downloaded'!r}",
        ),
        flag("--output-dir", f"default={plan.output_dir!r}", 'help="metrics and checkpoints go here"'),
        flag(
            "--resume",
            'nargs="?"',
            'const="latest"',
            "default=None",
            'metavar="CHECKPOINT"',
            'help="continue from the newest complete checkpoint in --output-dir, or from CHECKPOINT"',
        ),
        flag("--seed", "type=int", f"default={t.seed!r}", 'help="seeds the weights, the data order and augmentation"'),
        flag("--num-workers", "type=workers", "default=dataset.NUM_WORKERS", 'help="data loading processes, or auto"'),
        flag("--amp", 'choices=["none", "bf16", "fp16"]', f"default={t.amp!r}", 'help="mixed precision (CUDA only)"'),
        flag(
            "--compile",
            "action=argparse.BooleanOptionalAction",
            f"default={t.compile!r}",
            'help="torch.compile the model"',
        ),
        flag(
            "--channels-last",
            "action=argparse.BooleanOptionalAction",
            f"default={t.channels_last!r}",
            'help="channels_last memory format (faster convolutions on recent GPUs)"',
        ),
        flag(
            "--deterministic",
            "action=argparse.BooleanOptionalAction",
            f"default={t.deterministic!r}",
            'help="deterministic algorithms: a rerun, or a resumed run, gives identical weights"',
        ),
        flag(
            "--clip-grad-norm", "type=float", f"default={t.clip_grad_norm!r}", 'help="clip the gradients\' total norm"'
        ),
        flag("--checkpoint-every", "type=int", f"default={t.checkpoint.every!r}", 'help="epochs between checkpoints"'),
        flag("--keep-checkpoints", "type=int", f"default={t.checkpoint.keep!r}", 'help="how many checkpoints to keep"'),
        flag("--log-interval", "type=float", f"default={t.log_interval!r}", 'help="seconds between progress lines"'),
        *(_pretrained_flags(flag) if plan.pretrained else []),
        *(_sample_flags(flag) if _language_model(plan) else []),
    ]


def _language_model(plan: Plan) -> bool:
    return bool(plan.loss.component.task == "language_model")


def _sample_flags(flag: Callable[..., Flag]) -> list[Flag]:
    """A language model: generate text after training (or from a finished run, with --resume)."""
    return [
        flag(
            "--sample",
            "type=int",
            "default=0",
            'metavar="N"',
            'help="after training, generate N tokens from --prompt (printed, and saved as sample.txt)"',
        ),
        flag("--prompt", 'default="\\n"', 'help="the text that generation continues"'),
        flag("--temperature", "type=float", "default=1.0", 'help="divides the logits: lower is more conservative"'),
        flag("--top-k", "type=int", "default=None", 'help="draw only from the k most likely tokens"'),
    ]


def _final_metric(metrics: list[MetricCode]) -> list[str]:
    lines = []
    for metric in metrics:
        if metric.final != "value":
            lines += [f"if key == {metric.key!r}:", f"    return {metric.final}"]
    return [*lines, "return value"]


_LM_FUNCTIONS = [
    "def check_vocab(data: Any) -> Any:",
    '    """The text\'s vocabulary must be the model\'s: as many tokens as the model has logits."""',
    '    vocab = getattr(data, "dataset", data).vocab  # a Subset\'s, with a random holdout',
    "    if len(vocab) != VOCAB_SIZE:",
    "        raise TrainError(",
    '            f"the text\'s vocabulary has {len(vocab)} tokens, but {MODEL_NAME} has vocab_size {VOCAB_SIZE}: "',
    '            f"set vocab_size: {len(vocab)} in the spec (or `vocab: bytes` in the source, for 256)"',
    "        )",
    "    return vocab",
    "",
    "",
    "@torch.no_grad()",
    "def generate(",
    "    model: nn.Module,",
    "    vocab: Any,",
    "    prompt: str,",
    "    n: int,",
    "    temperature: float,",
    "    top_k: int | None,",
    "    device: torch.device,",
    "    seed: int,",
    ") -> str:",
    '    """`n` tokens after `prompt`, each drawn from the model\'s next-token distribution."""',
    "    was_training = model.training",
    "    model.eval()",
    "    generator = torch.Generator(device=device).manual_seed(seed)",
    "    ids = vocab.encode(prompt) or [0]",
    "    idx = torch.tensor([ids], dtype=torch.int64, device=device)",
    "    for _ in range(n):",
    "        logits = model(idx[:, -INPUT_SHAPE[0] :])[:, -1].float() / max(temperature, 1e-6)",
    "        if top_k is not None:",
    "            kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]",
    '            logits = logits.masked_fill(logits < kth, float("-inf"))',
    "        next_id = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)",
    "        idx = torch.cat([idx, next_id], dim=1)",
    "    model.train(was_training)",
    "    return vocab.decode(idx[0, len(ids) :].tolist())",
    "",
    "",
]

_LM_AFTER_TEST = [
    "if args.sample > 0 and run.main:",
    "    options = (args.prompt, args.sample, args.temperature, args.top_k, run.device, args.seed)",
    "    text = generate(trainer.model, trainer.vocab, *options)",
    '    (run.out / "sample.txt").write_text(args.prompt + text, encoding="utf-8")',
    '    run.log(f"sample of {args.sample} tokens after {args.prompt!r}:\\n{args.prompt}{text}")',
]


def _pretrained_flags(flag: Callable[..., Flag]) -> list[Flag]:
    """Fine-tuning: where the starting weights come from (model.py's build_model does the loading)."""
    return [
        flag(
            "--pretrained",
            "action=argparse.BooleanOptionalAction",
            "default=True",
            'help="start from the pretrained weights the spec names (downloaded once by torchvision)"',
        ),
        flag(
            "--weights-file",
            "default=PRETRAINED_FILE",
            'help="a saved state_dict to start from instead (loaded with weights_only=True)"',
        ),
    ]


def _scheduler_lines(plan: Plan, call: Call | None) -> list[str]:
    warmup = plan.train.warmup
    lr_scheduler = "torch.optim.lr_scheduler"
    if warmup is None:
        return [f"return {call.render() if call else 'None'}"]
    linear = f"{lr_scheduler}.LinearLR(optimizer, start_factor={warmup.start_factor!r}, total_iters={warmup.epochs})"
    if call is None:
        return [f"return {linear}"]
    return [
        f"warmup = {linear}",
        f"epochs = max(1, epochs - {warmup.epochs})  # what follows the warmup",
        f"main = {call.render()}",
        f"return {lr_scheduler}.SequentialLR(optimizer, [warmup, main], milestones=[{warmup.epochs}])",
    ]


def _train_docstring(plan: Plan) -> str:
    return "\n".join(
        [
            f"Train {plan.model} on {plan.source.component.description}.",
            "",
            "    python train.py                          # one process: CPU or one GPU",
            "    torchrun --nproc_per_node=4 train.py     # DDP: 4 GPUs (NCCL), or 4 CPU processes (gloo)",
            "    python train.py --resume                 # continue from the newest checkpoint",
            "",
            "Every flag defaults to the spec's value (`python train.py --help`). Under --output-dir it writes",
            "metrics.jsonl (one line per epoch), checkpoint-*.pt (the newest kept) and summary.json.",
            "Ctrl-C (or SIGTERM) saves a checkpoint after the current step; a second one quits at once.",
        ]
    )


def import_block(groups: dict[str, set[str]]) -> list[str]:
    """Import lines grouped (standard library, third party), sorted as isort does, blank lines between."""
    lines: list[str] = ["from __future__ import annotations", ""]
    for name in (_STDLIB, _THIRD_PARTY):
        group = groups.get(name, set())
        if group:
            lines += [*sorted(group, key=lambda line: (line.startswith("from"), line)), ""]
    return lines[:-1]
