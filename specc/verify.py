"""`specc verify SPEC`: the differential check. Builds the spec, runs the generated model in torch, and
compares the shape (and dtype) of every node's value with the one specc inferred.

Two runs: on the meta device (no memory, no arithmetic: any size) and, when the model is small enough,
on the CPU with a small real batch. Values are observed two ways: forward hooks on every module whose
output is the layer's value (layers, sequentials and their children, blocks and their instances), and a
trace of each generated `forward` that reads every assignment's value, so function ops (`add`, `reshape`,
...) and modules called in their own way (attention's `(...)[0]`) are checked too.

torch is imported inside `verify` only: the compiler itself never imports torch.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import math
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, TextIO

from specc.errors import SpecErrors
from specc.ir import Graph, Node, walk_all
from specc.ops import Op, TensorType, get_op

EXIT_OK, EXIT_MISMATCH, EXIT_SPEC_ERROR = 0, 1, 2
# The CPU run is skipped when parameters plus every node's value (for the batch) exceed this many elements.
MAX_REAL_ELEMENTS = 20_000_000


@dataclass(frozen=True)
class Mismatch:
    """One value whose shape or dtype in torch differs from specc's inference."""

    run: str  # "meta" or "cpu"
    node: str  # qualified name, as in model.named_modules() (`layer1.0.conv1`); "" is the model's output
    expected: str  # e.g. "(2, 16, 5, 5) float32"
    actual: str

    def __str__(self) -> str:
        return f"{self.run}: {self.node or '<output>'}: specc inferred {self.expected}, torch gives {self.actual}"


@dataclass
class VerifyReport:
    """What `verify` compared and found. `ok` when every observed value agrees and torch raised nothing."""

    spec: str
    batch_size: int
    runs: list[str] = field(default_factory=list)  # the runs that completed: "meta", "cpu"
    checked: int = 0  # comparisons made (over all runs)
    mismatches: list[Mismatch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # torch raised, or a value specc expected was never seen
    skipped: list[str] = field(default_factory=list)  # runs left out, with the reason

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.errors and bool(self.runs)

    def format(self) -> str:
        lines = [str(m) for m in self.mismatches]
        lines += [f"error: {e}" for e in self.errors]
        lines += [f"note: {s}" for s in self.skipped]
        runs = " and ".join(self.runs) or "no run"
        verdict = "all shapes agree" if self.ok else f"{len(self.mismatches)} mismatch(es), {len(self.errors)} error(s)"
        lines.append(f"{self.spec}: {self.checked} values checked ({runs}, batch {self.batch_size}): {verdict}")
        return "\n".join(lines) + "\n"


def verify(
    spec: str | Path,
    *,
    batch_size: int = 2,
    meta: bool = True,
    real: bool = True,
    max_real_elements: int = MAX_REAL_ELEMENTS,
) -> VerifyReport:
    """Build `spec`, run the generated model and compare every node's shape and dtype with specc's inference.

    Raises `SpecErrors` for a spec specc refuses, and ImportError if torch is not installed.
    """
    from specc.compiler import analyze

    compiled = analyze(spec)  # SpecErrors for a bad spec, before anything is generated or imported
    import torch

    report = VerifyReport(str(spec), batch_size)
    graph = compiled.graph
    with tempfile.TemporaryDirectory(prefix="specc-verify-") as tmp:
        out = Path(tmp) / "model"
        out.mkdir()
        source = _model_source(compiled)
        (out / "model.py").write_text(source, encoding="utf-8")
        module = _import(out / "model.py")
        try:
            expected = _Expectations(graph, source)
            build_model = _builder(module)
            if meta:
                _run("meta", build_model, graph, expected, report, batch_size, torch)
            if real:
                size = graph.param_count + batch_size * _activation_elements(graph)
                if size > max_real_elements:
                    report.skipped.append(
                        f"cpu run skipped: about {size:,} elements of parameters and values"
                        f" (limit {max_real_elements:,})"
                    )
                else:
                    _run("cpu", build_model, graph, expected, report, batch_size, torch)
        finally:
            sys.modules.pop(module.__name__, None)
    return report


def _model_source(compiled: Any) -> str:
    """model.py as `specc build` writes it (the only file the check needs: dataset.py and train.py are not
    generated, which keeps it fast)."""
    from specc.codegen import header, render_model, transfer_context
    from specc.format import format_python

    head = header(compiled.doc.file, compiled.doc.raw, "model")
    return format_python(render_model(compiled.program, head, transfer_context(compiled.spec, compiled.transfer)))


def verify_command(spec: str | Path, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """`specc verify SPEC` for the CLI: prints the report; exit 0 when everything agrees, 1 on a mismatch
    (or torch failing on a spec specc accepted), 2 on a spec error or without torch."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        report = verify(spec)
    except SpecErrors as exc:
        print(exc.format(), file=stderr)
        return EXIT_SPEC_ERROR
    except ImportError as exc:
        print(f"specc verify needs torch ({exc}); install it with `pip install 'specc[torch]'`", file=stderr)
        return EXIT_SPEC_ERROR
    (stdout if report.ok else stderr).write(report.format())
    return EXIT_OK if report.ok else EXIT_MISMATCH


# ----------------------------------------------------------------------------------------------- the runs


def _run(
    run: str,
    build_model: Callable[[], Any],
    graph: Graph,
    expected: _Expectations,
    report: VerifyReport,
    batch: int,
    torch: Any,
) -> None:
    device = torch.device(run)
    seen: list[tuple[str, str, TensorType]] = []  # (qualified node name, what torch gave, expected type)

    def record(name: str, value: Any, want: TensorType) -> None:
        if isinstance(value, torch.Tensor):
            seen.append((name, f"{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}", want))
        else:
            seen.append((name, f"a {type(value).__name__}", want))

    try:
        with torch.device(device):
            model = build_model()
        model.eval()
        inputs = [_example(t, batch, device, torch) for t in graph.inputs.values()]
        hooks = [
            module.register_forward_hook(_hook(name, expected.modules[name], record))
            for name, module in model.named_modules()
            if name in expected.modules
        ]
        try:
            # The CPU run keeps autograd on, as training does (in-place changes of a parameter fail there).
            with torch.set_grad_enabled(run != "meta"), _tracing(expected, model, record):
                output = model(*inputs)
        finally:
            for hook in hooks:
                hook.remove()
        traced = expected.traced_names(model)
        actual_parameters = {name: p.numel() for name, p in model.named_parameters()}
    except (NotImplementedError, RuntimeError) as exc:
        message = _first_line(exc)
        if run == "meta" or isinstance(exc, NotImplementedError) or "not implemented for" in message:
            report.skipped.append(f"{run} run skipped: torch cannot run it here ({type(exc).__name__}: {message})")
        else:
            report.errors.append(f"{run}: torch raised {type(exc).__name__}: {message}")
        return
    except Exception as exc:  # anything else torch raises on a spec specc accepted is a finding
        report.errors.append(f"{run}: torch raised {type(exc).__name__}: {_first_line(exc)}")
        return
    report.runs.append(run)
    record("", output, expected.output)
    reported = set()
    for name, actual, want in seen:
        report.checked += 1
        mismatch = Mismatch(run, name, _show(want, batch), actual)
        if actual != mismatch.expected and mismatch not in reported:  # a hook and the trace may both see it
            reported.add(mismatch)
            report.mismatches.append(mismatch)
    observed = {name for name, _, _ in seen}
    for name in sorted((set(expected.modules) | traced) - observed):
        report.errors.append(f"{run}: `{name}` was never computed")
    report.checked += 1
    if list(actual_parameters.items()) != list(expected.parameters.items()):
        differing = [
            Mismatch(run, name, _elements(expected.parameters.get(name)), _elements(actual_parameters.get(name)))
            for name in dict.fromkeys([*expected.parameters, *actual_parameters])
            if expected.parameters.get(name) != actual_parameters.get(name)
        ]
        report.mismatches += differing or [Mismatch(run, "", "parameters in specc's order", "another order")]


def _builder(module: ModuleType) -> Callable[[], Any]:
    """The generated `build_model`, without pretrained weights (no download, no weights file)."""
    parameters = inspect.signature(module.build_model).parameters
    if "pretrained" in parameters:
        return lambda: module.build_model(pretrained=False, weights_file=None)
    return module.build_model  # type: ignore[no-any-return]


def _elements(size: int | None) -> str:
    return "no such parameter" if size is None else f"a parameter of {size:,} elements"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


def _example(t: TensorType, batch: int, device: Any, torch: Any) -> Any:
    dtype = getattr(torch, t.dtype)
    size = (batch, *(int(d) for d in t.shape))
    if device.type == "meta" or t.dtype in ("bool", "int64", "int32"):
        return torch.zeros(size, dtype=dtype, device=device)  # index 0 is valid for every embedding
    return torch.randn(size, device=device).to(dtype)


def _hook(name: str, want: TensorType, record: Callable[[str, Any, TensorType], None]) -> Callable[..., None]:
    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        record(name, output, want)

    return hook


def _show(t: TensorType, batch: int) -> str:
    return f"{(1 if t.broadcast else batch, *(int(d) for d in t.shape))} {t.dtype}"


def _activation_elements(graph: Graph) -> int:
    total = sum(math.prod(int(d) for d in t.shape) for t in graph.inputs.values())
    for node in walk_all(graph):
        if node.out is not None and node.present:
            total += math.prod(int(d) for d in node.out.shape)
    return total


def _import(path: Path) -> ModuleType:
    name = f"_specc_verify_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------ expectations


def _plain(node: Node) -> bool:
    """A module whose output is the node's value (not attention's `(...)[0]`, not a position embedding)."""
    op = get_op(node.op) if node.kind == "op" else None
    if op is None:
        return node.kind in ("sequential", "block")
    return op.kind == "module" and type(op).module_call is Op.module_call


class _Expectations:
    """What specc inferred, keyed the way torch names things.

    `modules`: qualified module name -> the type its forward returns (checked by hooks).
    `classes`: qualified module name -> the graph whose class `forward` computes its nodes (traced).
    `parameters`: qualified parameter name -> element count, in `named_parameters()` order.
    `statements`: class name -> its forward's assignments (first line, target) and its return line.
    """

    def __init__(self, graph: Graph, source: str) -> None:
        from specc.summary import parameters

        self.modules: dict[str, TensorType] = {}
        self.classes: dict[str, Graph] = {"": graph}
        self.output = graph.output_type
        self.parameters = parameters(graph)
        self.statements = _forward_statements(source)
        self._plans: dict[str, list[int] | None] = {}
        self._visit_graph(graph, "")

    def _visit_graph(self, graph: Graph, prefix: str) -> None:
        for node in graph.nodes:
            self._visit(node, prefix)

    def _visit(self, node: Node, prefix: str) -> None:
        if not node.present or node.out is None:
            return
        name = f"{prefix}{node.name}"
        if _plain(node):
            self.modules[name] = node.out
        for child in node.children:
            self._visit(child, f"{name}.")
        for index, instance in enumerate(node.instances):
            if node.repeated:
                qualified = f"{name}.{node.instance_name(index)}"
                assert instance.call_output is not None
                self.modules[qualified] = instance.call_output
            else:
                qualified = name
            self.classes[qualified] = instance
            self._visit_graph(instance, f"{qualified}.")

    def plan(self, class_name: str, module_names: list[str]) -> list[int] | None:
        """Which node (an index into the graph's nodes) each assignment in `class_name.forward` computes, for
        the modules `module_names` of that class; None if the assignments do not match the nodes."""
        if class_name not in self._plans:
            graphs = [self.classes[name] for name in module_names]
            statements = self.statements.get(class_name)
            result = None
            if graphs and statements is not None:
                printed = [
                    k
                    for k, node in enumerate(graphs[0].nodes)
                    if not node.is_parameter and any(g.nodes[k].present for g in graphs)
                ]
                result = printed if len(printed) == len(statements[0]) else None
            self._plans[class_name] = result
        return self._plans[class_name]

    def traced_names(self, model: Any) -> set[str]:
        """The qualified names of the nodes the trace reports (those of classes whose plan is known)."""
        members: dict[str, list[str]] = {}
        for name, module in model.named_modules():
            if name in self.classes:
                members.setdefault(type(module).__name__, []).append(name)
        names = set()
        for class_name, modules in members.items():
            plan = self.plan(class_name, modules)
            for qualified in modules if plan is not None else ():
                prefix = f"{qualified}." if qualified else ""
                names.update(f"{prefix}{self.classes[qualified].nodes[k].name}" for k in plan)
        return names


def _forward_statements(source: str) -> dict[str, tuple[list[tuple[int, str]], int]]:
    """For each class in model.py: its forward's assignments as (first line, target), and the return line."""
    found: dict[str, tuple[list[tuple[int, str]], int]] = {}
    for cls in ast.parse(source).body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for fn in cls.body:
            if isinstance(fn, ast.FunctionDef) and fn.name == "forward":
                assigns = [
                    (s.lineno, s.targets[0].id)
                    for s in fn.body
                    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                ]
                returns = [s.lineno for s in fn.body if isinstance(s, ast.Return)]
                found[cls.name] = (assigns, returns[-1] if returns else -1)
    return found


# -------------------------------------------------------------------------------------------------- tracing


@contextmanager
def _tracing(expected: _Expectations, model: Any, record: Callable[[str, Any, TensorType], None]) -> Iterator[None]:
    """While active, every generated `forward` (the model's and its blocks') reports the value of each
    assignment as it completes: at the first line of the next statement, or when forward returns."""
    owners: dict[int, tuple[str, Any]] = {
        id(module): (name, module) for name, module in model.named_modules() if name in expected.classes
    }
    members: dict[str, list[str]] = {}
    for name, module in owners.values():
        members.setdefault(type(module).__name__, []).append(name)

    def tracer(frame: FrameType, event: str, _arg: Any) -> Any:
        if event != "call" or frame.f_code.co_name != "forward":
            return None
        owner = owners.get(id(frame.f_locals.get("self")))
        if owner is None:
            return None
        qualified, module = owner
        class_name = type(module).__name__
        plan = expected.plan(class_name, members[class_name])
        if plan is None:
            return None
        assigns, return_line = expected.statements[class_name]
        graph = expected.classes[qualified]
        starts = {line: index for index, (line, _) in enumerate(assigns)}
        prefix = f"{qualified}." if qualified else ""
        done: set[int] = set()

        def report(upto: int, local_frame: FrameType) -> None:
            for index in range(upto):
                if index not in done:
                    done.add(index)
                    node = graph.nodes[plan[index]]
                    assert node.out is not None
                    record(f"{prefix}{node.name}", local_frame.f_locals.get(assigns[index][1]), node.out)

        def local(local_frame: FrameType, local_event: str, _arg: Any) -> Any:
            if local_event == "line":
                line = local_frame.f_lineno
                if line in starts:
                    report(starts[line], local_frame)
                elif line == return_line:
                    report(len(assigns), local_frame)
            elif local_event == "return":
                report(len(assigns), local_frame)
            return local

        return local

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(previous)
