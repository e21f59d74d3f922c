"""The pipeline: load -> validate -> resolve -> infer -> generate -> format. Each stage is its own module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specc.errors import SpecError, SpecErrors
from specc.extend import apply_extends
from specc.ir import Graph, Program
from specc.load import Document, load_file
from specc.resolve import resolve
from specc.shapes import infer
from specc.spec.document import Spec
from specc.training.plan import Plan
from specc.training.plan import plan as plan_training
from specc.transfer import TransferPlan, plan_transfer
from specc.validate import validate


@dataclass(frozen=True)
class Compiled:
    doc: Document
    spec: Spec
    program: Program  # with shapes
    transfer: TransferPlan
    training: Plan | None  # the checked data/train sections; None without a data section

    @property
    def graph(self) -> Graph:
        """The model's graph (block uses carry their inferred instances)."""
        return self.program.model


def analyze(path: str | Path) -> Compiled:
    """Everything short of code generation (what `specc validate` and `specc summary` need).

    Raises `SpecErrors` (never anything else for a problem in the spec).
    """
    try:
        doc = apply_extends(load_file(path))
        spec = validate(doc)
        program = infer(resolve(spec, doc), doc)
        transfer = plan_transfer(spec, program.model, doc)
        training = plan_training(spec, program.model, doc)  # the data/train sections against the model
    except SpecError as exc:
        raise SpecErrors([exc]) from None
    return Compiled(doc, spec, program, transfer, training)


def generate(compiled: Compiled, out_dir: str | None = None, templates: str | Path | None = None) -> dict[str, str]:
    """The generated files (name -> text): model.py, MODEL.md, and with a data section dataset.py and train.py.

    `templates`: a directory whose templates override specc's of the same name.
    """
    from specc.codegen import header, render_model, render_model_md, transfer_context
    from specc.format import format_python

    overrides = str(templates) if templates is not None else None
    head = header(compiled.doc.file, compiled.doc.raw, out_dir)
    transfer = transfer_context(compiled.spec, compiled.transfer)
    files = {
        "model.py": format_python(render_model(compiled.program, head, transfer, overrides)),
        "MODEL.md": render_model_md(compiled.graph, head, compiled.transfer.trainable_params, overrides),
    }
    training = compiled.training
    if training is not None:  # a data section: dataset.py and train.py as well
        from specc.training.codegen import render_dataset, render_train

        files["dataset.py"] = format_python(render_dataset(training, head))
        files["train.py"] = format_python(render_train(training, head))
    return files
