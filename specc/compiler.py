"""The pipeline: load -> validate -> resolve -> infer -> generate -> format. Each stage is its own module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specc.errors import SpecError, SpecErrors
from specc.ir import Graph, Program
from specc.load import Document, load_file
from specc.resolve import resolve
from specc.shapes import infer
from specc.spec.document import Spec
from specc.validate import validate


@dataclass(frozen=True)
class Compiled:
    doc: Document
    spec: Spec
    program: Program  # with shapes

    @property
    def graph(self) -> Graph:
        """The model's graph (block uses carry their inferred instances)."""
        return self.program.model


def analyze(path: str | Path) -> Compiled:
    """Everything short of code generation (what `specc validate` and `specc summary` need).

    Raises `SpecErrors` (never anything else for a problem in the spec).
    """
    try:
        doc = load_file(path)
        spec = validate(doc)
        program = infer(resolve(spec, doc), doc)
    except SpecError as exc:
        raise SpecErrors([exc]) from None
    return Compiled(doc, spec, program)


def generate(compiled: Compiled, out_dir: str | None = None) -> dict[str, str]:
    """The generated files (name -> formatted text)."""
    from specc.codegen import header, render_model
    from specc.format import format_python

    head = header(compiled.doc.file, compiled.doc.raw, out_dir)
    return {"model.py": format_python(render_model(compiled.program, head))}
