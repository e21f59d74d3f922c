"""Stage 5: IR -> source text. Builds plain-data template contexts; the templates only print them.

Code is emitted by node kind: an op of kind "module" becomes an attribute built in `__init__` and
called in `forward`; an op of kind "function" is an expression in `forward`; a sequential becomes an
`nn.Sequential`; a block use becomes an instance of the block's class. No op needs a template change.

A block's class is printed once from all its instances: their sizes are symbolic (`planes * 4`), and
the class is only shared when every instance prints the same code. Instances that print differently
(a size that no expression covers) get a class of their own, suffixed `_2`, `_3`, ... A layer with a
`when` is built under `if <condition>:`, the condition written over the constructor's parameters, so
instances that differ only in whether they have it share a class; the constructor takes every name
that any of its instances' code uses.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import PurePath
from typing import Any

import jinja2

from specc import __version__
from specc.expr import Expr, ExprError, parse
from specc.format import LINE_LENGTH
from specc.ir import Graph, Node, Program, lint, walk, walk_all
from specc.ops import TensorType, get_op
from specc.ops.base import HelperClass, literal
from specc.shapes import block_dim_names, input_names, parameter_dtype
from specc.spec.document import Spec
from specc.symbolic import Dim, has_dim, render, substitute
from specc.transfer import TransferPlan

DTYPE_CODE = {
    "float32": "torch.float32",
    "float64": "torch.float64",
    "float16": "torch.float16",
    "bfloat16": "torch.bfloat16",
    "int64": "torch.int64",
    "int32": "torch.int32",
    "bool": "torch.bool",
}
# What a block instance prints in its class (see _ClassPlanner._signature).
Signature = tuple[Any, ...]
_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# A name in code, not an attribute (`self.fc`) nor a keyword argument (`bias=`).
_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?!\w|\s*=[^=])")


@dataclass(frozen=True)
class Header:
    version: str
    spec_file: str
    sha256: str
    command: str


@dataclass(frozen=True)
class ClassContext:
    name: str
    init_params: list[str]
    init_lines: list[str]
    forward_params: list[str]
    forward_lines: list[str]
    output: str


UNSHOWN_FILE_NAME = "SPEC"


def shown_file_name(path: str) -> str:
    """A spec file's base name as it may appear in a generated comment, or a placeholder.

    Only plain names (letters, digits, `._-`) are shown: any other text in a comment could, among
    other things, spell a PEP 263 encoding cookie (`coding: unicode_escape`) that changes how Python
    decodes the whole file. The header also keeps file names off its first two lines, where such a
    cookie is read.
    """
    name = PurePath(path).name
    return name if _SAFE_FILE_NAME.match(name) else UNSHOWN_FILE_NAME


def header(spec_file: str, raw: bytes, out_dir: str | None) -> Header:
    spec_name = shown_file_name(spec_file)
    out_name = shown_file_name(out_dir) if out_dir else "DIR"
    return Header(
        version=__version__,
        spec_file=spec_name,
        sha256=hashlib.sha256(raw).hexdigest(),
        command=f"specc build {spec_name} -o {out_name}",
    )


@cache
def environment(overrides: str | None = None) -> jinja2.Environment:
    """The template environment; a template in the `overrides` directory wins over specc's of the same name."""
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(resources.files("specc.templates")))]
    if overrides is not None:
        loaders.insert(0, jinja2.FileSystemLoader(overrides))
    loader = jinja2.ChoiceLoader(loaders)
    return jinja2.Environment(
        loader=loader,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


@dataclass(frozen=True)
class TransferContext:
    """Transfer-learning constants for model.py, each already a Python literal (repr)."""

    model: str
    weights: str
    file: str
    not_loaded: str
    frozen: str
    trainable: str
    summary: list[str]  # docstring lines: names and patterns only (validated, quote-free)


def transfer_context(spec: Spec, plan: TransferPlan) -> TransferContext | None:
    if spec.pretrained is None and not spec.freeze:
        return None
    pretrained = spec.pretrained
    summary = []
    if pretrained is not None:
        source = (
            f"torchvision's {pretrained.torchvision} ({pretrained.weights})" if pretrained.torchvision else "a file"
        )
        except_ = f", except {', '.join(pretrained.exclude)}" if pretrained.exclude else ""
        summary.append(f"Starts from {source} weights{except_}.")
    if spec.freeze:
        kept = f" except {', '.join(spec.trainable)}" if spec.trainable else ""
        summary.append(f"Freezes {', '.join(spec.freeze)}{kept}: {plan.trainable_params:,} trainable parameters.")
    return TransferContext(
        model=repr(pretrained.torchvision if pretrained else None),
        weights=repr(pretrained.weights if pretrained else None),
        file=repr(pretrained.file if pretrained else None),
        not_loaded=literal(tuple(pretrained.exclude) if pretrained else ()),
        frozen=literal(tuple(spec.freeze)),
        trainable=literal(tuple(spec.trainable)),
        summary=summary,
    )


def render_model(
    program: Program, head: Header, transfer: TransferContext | None = None, templates: str | None = None
) -> str:
    """The unformatted text of model.py."""
    graph = program.model
    lint(graph)
    planner = _ClassPlanner(program)
    classes = [*planner.block_classes(), planner.class_context(graph, graph.name, [graph])]
    examples = []
    for t in graph.inputs.values():
        size = ", ".join(["batch_size", *map(str, t.shape)])
        factory = "zeros" if t.dtype in ("int64", "int32", "bool") else "randn"
        examples.append(f"torch.{factory}({size}, dtype={DTYPE_CODE[t.dtype]})")
    dtype = parameter_dtype(graph.inputs.values())
    return (
        environment(templates)
        .get_template("model.py.jinja")
        .render(
            header=head,
            docstring=f"The {graph.name} network, generated by specc.",
            imports=import_lines([*(["import fnmatch"] if transfer else []), *planner.imports()]),
            input_shapes=repr({name: tuple(int(d) for d in t.shape) for name, t in graph.inputs.items()}),
            input_dtypes=repr({name: t.dtype for name, t in graph.inputs.items()}),
            classes=classes,
            model_class=graph.name,
            example_inputs=examples,
            parameter_dtype=None if dtype == "float32" else dtype,
            dtype_code=DTYPE_CODE[dtype],
            transfer=transfer,
        )
    )


def render_model_md(graph: Graph, head: Header, trainable: int, templates: str | None = None) -> str:
    """MODEL.md: the summary table and the Mermaid diagram, so a code review on GitHub shows the network."""
    from specc.graph import diagram, to_mermaid
    from specc.summary import rows

    table = [
        (
            r.name,
            r.op,
            "(" + ", ".join(["B", *map(str, r.output_shape)]) + ")",
            f"{r.params:,}",
            f"{r.macs:,}",
        )
        for r in rows(graph)
    ]
    inputs = ", ".join(
        f"`{name}` (B, {', '.join(str(int(d)) for d in t.shape)}) {t.dtype}" for name, t in graph.inputs.items()
    )
    return (
        environment(templates)
        .get_template("MODEL.md.jinja")
        .render(
            header=head,
            name=graph.name,
            inputs=inputs,
            table=table,
            total_params=f"{graph.param_count:,}",
            trainable_params=f"{trainable:,}",
            macs=f"{graph.macs:,}",
            gmacs=f"{graph.macs / 1e9:.2f}",
            mermaid=to_mermaid(diagram(graph)),
        )
    )


def import_lines(extra: list[str]) -> list[str]:
    """model.py's imports: the standard library's, a blank line, then torch's; each group sorted as isort
    sorts it (`import a` lines before `from a import b` lines)."""
    groups: tuple[set[str], set[str]] = (set(), {"import torch", "from torch import nn"})
    for line in extra:
        groups[line.split()[1].split(".")[0] == "torch"].add(line)
    lines: list[str] = []
    for group in groups:
        if group:
            lines += [*([""] if lines else []), *sorted(group, key=lambda line: (line.startswith("from "), line))]
    return lines


# In a block's comments the input's sizes are abbreviated: `# x: (B, C, H, W)`.
_SIZE_ABBREVIATIONS = {"in_channels": "C", "in_depth": "D", "in_height": "H", "in_width": "W", "in_features": "F"}
_SIZE_NAME = re.compile(r"\b(" + "|".join(_SIZE_ABBREVIATIONS) + r")\b")


MAX_SIZE_CHARS = 40  # a longer symbolic size prints as `*` in comments


def describe(t: TensorType) -> str:
    """A shape for a comment, symbolic sizes as expressions: (B, planes * 4, (H - 1) // stride + 1, ...)."""
    sizes = [_SIZE_NAME.sub(lambda m: _SIZE_ABBREVIATIONS[m.group(1)], render(d)) for d in t.shape]
    return "(" + ", ".join([t.batch, *(s if len(s) <= MAX_SIZE_CHARS else "*" for s in sizes)]) + ")"


class _ClassPlanner:
    """Decides which classes model.py defines and which class each block instance uses."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.class_of: dict[int, str] = {}  # id(instance graph) -> class name
        self.params_of: dict[str, list[str]] = {}  # class name -> its constructor's parameter names
        self.taken = {program.model.name, *program.blocks}

    def block_classes(self) -> list[ClassContext]:
        """The helper classes the ops need, then the block classes (a class before its users)."""
        instances: dict[str, list[Graph]] = {name: [] for name in self.program.blocks}
        self._collect(self.program.model, instances)
        classes = [_helper_context(helper) for helper in self._support()[1]]
        for name in self.program.blocks:  # dependency order: a block's classes come before their users
            if instances[name]:
                classes += self._classes_for(name, instances[name])
        return classes

    def imports(self) -> list[str]:
        """Import lines the model's code needs beyond `import torch` and `from torch import nn`, sorted."""
        return sorted(self._support()[0])

    def _support(self) -> tuple[set[str], list[HelperClass]]:
        """What the emitted code uses: import lines, and helper classes in order of first use."""
        imports: set[str] = set()
        helpers: dict[str, HelperClass] = {}
        for node in walk_all(self.program.model):
            op = get_op(node.op) if node.kind == "op" and node.present else None
            if op is not None:
                imports.update(op.imports(node.params))
                for helper in op.helpers(node.params):
                    helpers.setdefault(helper.name, helper)
                    imports.update(helper.imports)
            if _named_children(node):
                imports.add("from collections import OrderedDict")
        return imports, list(helpers.values())

    def _collect(self, graph: Graph, into: dict[str, list[Graph]]) -> None:
        for node in walk(graph.nodes):
            if node.kind == "block" and node.present:
                for instance in node.instances:
                    into[node.op].append(instance)
                    self._collect(instance, into)

    def _classes_for(self, name: str, instances: list[Graph]) -> list[ClassContext]:
        groups: dict[Signature, list[Graph]] = {}
        for instance in instances:
            groups.setdefault(self._signature(instance), []).append(instance)
        merged = self._merge(list(groups.items()))
        classes = []
        for index, (signature, group) in enumerate(merged):
            class_name = name if index == 0 else self._fresh(name)
            for instance in group:
                self.class_of[id(instance)] = class_name
            self.params_of[class_name] = _class_params(signature, group[0])
            classes.append(self.class_context(group[0], class_name, group))
        return classes

    def _merge(self, groups: list[tuple[Signature, list[Graph]]]) -> list[tuple[Signature, list[Graph]]]:
        """Join groups whose present nodes print the same (a node absent in one group is guarded by its
        condition, which must print the same too); each joined group with what its class prints."""
        merged: list[tuple[Signature, list[Graph]]] = []
        for signature, group in groups:
            for index, (target, members) in enumerate(merged):
                if _compatible(target, signature):
                    merged[index] = (_combined(target, signature), [*members, *group])
                    break
            else:
                merged.append((signature, list(group)))
        return merged

    def _fresh(self, stem: str) -> str:
        index = 2
        while f"{stem}_{index}" in self.taken:
            index += 1
        self.taken.add(f"{stem}_{index}")
        return f"{stem}_{index}"

    def _signature(self, graph: Graph) -> Signature:
        """What an instance prints in its class: its vars, then node by node the `when` condition (or None)
        and the node's code (`__init__`, and `forward` where an op's call has arguments of its own), or None
        where the node is absent."""
        return (
            tuple(_var_lines(graph)),
            *(
                (_when_source(graph, n), tuple(self._init_lines(n) + _call_comment(n)) if n.present else None)
                for n in graph.nodes
            ),
        )

    def _init_lines(self, node: Node) -> list[str]:
        op = get_op(node.op) if node.kind == "op" else None
        if op is not None and op.kind == "function":
            code = op.forward_code(_concrete(node.params), list(node.inputs_types), ["_"] * len(node.inputs))
            return [f"# {node.name}: {code}"]
        lines = self._constructor(node)
        lines[0] = f"self.{node.name} = {lines[0]}"
        if node.tie is not None:  # weight tying: one tensor, two layers
            lines.append(f"self.{node.name}.weight = self.{node.tie}.weight")
        return lines

    def _constructor(self, node: Node) -> list[str]:
        if node.kind == "sequential":
            parts = []
            for child in node.children:
                assert child.out is not None
                parts.append((child.name, self._constructor(child), describe(child.out)))
            return _sequential(parts, named=_named_children(node))
        if node.kind == "block":
            calls = [self._call_site(instance) for instance in node.instances]
            if not node.repeated:
                return [calls[0]]
            parts = []
            for index, (call, instance) in enumerate(zip(calls, node.instances, strict=True)):
                assert instance.call_output is not None
                parts.append((node.instance_name(index), [call], describe(instance.call_output)))
            if _loops(node):
                return _module_list(parts, named=node.names is not None)
            return _sequential(parts, named=_named_children(node))
        op = get_op(node.op)
        assert op is not None and node.params is not None
        if op.kind == "function":
            raise ValueError(f"{node.op} cannot be used inside a sequential: it is a function of several inputs")
        return [op.emit(node.params, list(node.inputs_types)).render()]

    def _call_site(self, instance: Graph) -> str:
        class_name = self.class_of[id(instance)]
        params = self.params_of[class_name]
        assert instance.call_input is not None and instance.block_params is not None
        names = block_dim_names(instance, instance.call_input.rank)
        sizes = dict(zip(names, instance.call_input.shape, strict=True))
        args = [render(sizes[p]) for p in params if p in sizes]
        for key, decl in instance.block_params.items():
            value = instance.env[key]
            if (
                decl.required
                or isinstance(value, Dim)
                or value != decl.default
                or type(value) is not type(decl.default)
            ):
                args.append(f"{key}={render(value)}")
        return f"{class_name}({', '.join(args)})"

    def class_context(self, graph: Graph, class_name: str, group: list[Graph]) -> ClassContext:
        init_lines: list[str] = []
        forward_lines = [f"# {name}: {describe(t)}" for name, t in graph.inputs.items()]
        canonical = _aliases(graph, group)
        remaining = _consumers(graph, group, canonical)
        variable = {name: name for name in graph.inputs}
        holder_of_x = "x" if "x" in graph.inputs else None
        for index, node in enumerate(graph.nodes):
            present = [g.nodes[index] for g in group if g.nodes[index].present]
            args = [variable[ref] for ref in node.inputs]
            if not present:  # absent everywhere: the node's value is its input's
                variable[node.name] = args[0]
                continue
            if node.is_parameter:  # an attribute: `self.<name>` wherever forward uses it
                init_lines += self._init_lines(present[0])
                variable[node.name] = f"self.{node.name}"
                continue
            for ref in node.inputs:
                remaining[canonical[ref]] -= 1
            loop = _loops(node)  # each pass reads the other inputs again: its value must not overwrite them
            if (holder_of_x is None or remaining[holder_of_x] == 0) and not (loop and "x" in args[1:]):
                target, holder_of_x = "x", node.name
            else:
                target = node.name
            variable[node.name] = target
            shown = present[0]
            comment = _merged_shape([n.out for n in present if n.out is not None])
            op = get_op(node.op) if node.kind == "op" else None
            if op is not None and op.kind == "function":
                code = op.forward_code(_concrete(shown.params), list(shown.inputs_types), args)
                forward_lines += _with_comment([f"{target} = {code}"], comment, "", indent=8)
                continue
            lines = self._init_lines(shown)
            if loop:  # a repeat of a block with several inputs: a loop over an nn.ModuleList
                init_lines += lines
                layer = _fresh_local("layer", graph)
                items = ".values()" if node.names else ""
                forward_lines += [f"{target} = {args[0]}"] if target != args[0] else []
                forward_lines.append(f"for {layer} in self.{node.name}{items}:")
                body = [f"{target} = {layer}({', '.join([target, *args[1:]])})"]
                forward_lines += ["    " + line for line in _with_comment(body, comment, "", indent=12)]
                continue
            call = _call(shown, f"self.{node.name}", args)
            condition = _when_source(graph, node)
            if condition is not None and condition not in ("True", "False"):  # a constant: the same everywhere
                init_lines += [
                    f"self.{node.name} = None",
                    f"if {condition}:",
                    *("    " + line for line in lines),
                ]
                call = f"{args[0]} if self.{node.name} is None else {call}"
            else:
                init_lines += lines
            forward_lines += _with_comment([f"{target} = {call}"], comment, "", indent=8)
        init_lines = [*_used_vars(_var_lines(graph), init_lines), *init_lines]
        init_params = []
        if graph.is_block:
            assert graph.block_params is not None
            names = self.params_of[class_name]
            sizes = [n for n in names if n not in graph.block_params]
            required = [n for n in names if n in graph.block_params and graph.block_params[n].required]
            optional = [n for n in names if n in graph.block_params and not graph.block_params[n].required]
            init_params += [f"{n}: int" for n in sizes]
            init_params += [f"{n}: {graph.block_params[n].type}" for n in required]
            init_params += [f"{n}: {graph.block_params[n].type} = {graph.block_params[n].default!r}" for n in optional]
        return ClassContext(
            name=class_name,
            init_params=init_params,
            init_lines=init_lines,  # after `super().__init__()`: a `pass` would be a lint
            forward_params=[f"{name}: torch.Tensor" for name in graph.inputs],
            forward_lines=forward_lines,
            output=variable[graph.output],
        )


def _with_comment(lines: list[str], comment: str, suffix: str, indent: int) -> list[str]:
    """`lines` ending in `suffix` with `# comment` after the last line, or above the first when too long."""
    last = f"{lines[-1]}{suffix}  # {comment}"
    if indent + len(last) <= LINE_LENGTH:
        return [*lines[:-1], last]
    return [f"# {comment}", *lines[:-1], f"{lines[-1]}{suffix}"]


def _call(node: Node, module: str, args: list[str]) -> str:
    """How forward calls a module node: `self.fc(x)`, or the op's own call (`self.attn(x, x, x, ...)[0]`)."""
    op = get_op(node.op) if node.kind == "op" else None
    if op is None:
        return f"{module}({', '.join(args)})"
    return op.module_call(_concrete(node.params), list(node.inputs_types), module, args)


def _call_comment(node: Node) -> list[str]:
    """A module op's call in a class signature, where it is more than `self.<name>(inputs)`."""
    op = get_op(node.op) if node.kind == "op" else None
    if op is None or op.kind != "module":
        return []
    args = [f"_{i}" for i in range(len(node.inputs))]
    call = _call(node, "_", args)
    return [] if call == f"_({', '.join(args)})" else [f"# {node.name}: {call}"]


def _concrete(params: Any) -> Any:
    """Op parameters with symbolic sizes replaced by their values, for code in `forward` (where a block's
    `__init__` parameters are out of scope); instances that differ then print different classes."""

    def plain(value: Any) -> Any:
        if isinstance(value, Dim):
            return int(value)
        if isinstance(value, (list, tuple)):
            return type(value)(plain(v) for v in value)
        return value

    updates = {key: plain(value) for key, value in params if has_dim(value)}
    return params.model_copy(update=updates) if updates else params


def _named_children(node: Node) -> bool:
    """Whether a container's children have names of their own (an `OrderedDict`), not just 0, 1, ..."""
    if not node.present:
        return False
    if node.kind == "sequential":
        return any(child.name != str(j) for j, child in enumerate(node.children))
    return node.repeated and node.names is not None and not _loops(node)


def _loops(node: Node) -> bool:
    """A repeat of a block with several inputs: forward loops over an `nn.ModuleList` (or `nn.ModuleDict`),
    passing every instance the other inputs."""
    return node.repeated and node.present and len(node.instances[0].inputs) > 1


def _fresh_local(stem: str, graph: Graph) -> str:
    """A local variable name for forward that no input or layer of the graph uses."""
    taken = {*graph.inputs, *(n.name for n in graph.nodes)}
    return next(name for name in (stem, *(f"{stem}_{i}" for i in range(1, len(taken) + 2))) if name not in taken)


def _module_list(parts: list[tuple[str, list[str], str]], named: bool) -> list[str]:
    """`nn.ModuleList([...])` of (name, constructor lines, output comment) children, or with `named` an
    `nn.ModuleDict({name: ...})`, so that the names are the state_dict keys."""
    lines = ["nn.ModuleDict(", "{"] if named else ["nn.ModuleList(", "["]
    for name, child_lines, comment in parts:
        entry = [f"{name!r}: {child_lines[0]}" if named else child_lines[0], *child_lines[1:]]
        lines += _with_comment(entry, comment, ",", indent=16)
    return [*lines, "}" if named else "]", ")"]


def _sequential(parts: list[tuple[str, list[str], str]], named: bool) -> list[str]:
    """`nn.Sequential(...)` of (name, constructor lines, output comment) children; with `named`, as an
    `OrderedDict` of (name, module) pairs, so that the names are the state_dict keys."""
    if not named:
        lines = ["nn.Sequential("]
        for _, child_lines, comment in parts:
            lines += _with_comment(child_lines, comment, ",", indent=12)
        return [*lines, ")"]
    lines = ["nn.Sequential(", "OrderedDict(", "["]
    for name, child_lines, comment in parts:
        pair = [f"({name!r}, {child_lines[0]}", *child_lines[1:]]
        pair[-1] += ")"
        lines += _with_comment(pair, comment, ",", indent=20)
    return [*lines, "]", ")", ")"]


def _helper_context(helper: HelperClass) -> ClassContext:
    return ClassContext(
        name=helper.name,
        init_params=list(helper.init_params),
        init_lines=list(helper.init_lines),
        forward_params=["x: torch.Tensor"],
        forward_lines=list(helper.forward_lines),
        output=helper.output,
    )


def _var_lines(graph: Graph) -> list[str]:
    """A block's vars as its `__init__` computes them: an int as its symbolic size (`width = planes * 4`); a
    float or bool written over the block's parameters (`use_bias = not norm`) as that expression, so that one
    class serves every value; otherwise its value."""
    variable = {*(graph.block_params or {}), *graph.var_values, *(graph.input_dims or ()), "in_channels", "in_features"}
    lines = []
    for name, value in graph.var_values.items():
        written = graph.block_vars.get(name)
        if not isinstance(value, Dim) and isinstance(written, Expr) and written.names & variable:
            source = _class_source(graph, written, list(graph.inputs.values()), condition=False)
        else:
            source = render(value)
        lines.append(f"{name} = {source}")
    return lines


def _names(lines: list[str]) -> set[str]:
    """The names code lines use (not attributes, not in comments)."""
    return {name for line in lines for name in _NAME.findall(line.split("#")[0])}


def _used_vars(var_lines: list[str], code: list[str]) -> list[str]:
    """The var lines that `code` needs, directly or through a later var (an unused local would be a lint)."""
    used, kept = _names(code), []
    for line in reversed(var_lines):
        name, _, source = line.partition(" = ")
        if name in used:
            kept.append(line)
            used |= _names([source])
    return kept[::-1]


def _compatible(a: Signature, b: Signature) -> bool:
    """Whether two signatures (`_ClassPlanner._signature`) can print one class: the same vars, and node by
    node the same condition and the same code wherever both have the node."""
    return a[0] == b[0] and all(
        when_a == when_b and (code_a is None or code_b is None or code_a == code_b)
        for (when_a, code_a), (when_b, code_b) in zip(a[1:], b[1:], strict=True)
    )


def _combined(a: Signature, b: Signature) -> Signature:
    """What a class prints for two compatible signatures: each node's code where either has it."""
    nodes = zip(a[1:], b[1:], strict=True)
    return (a[0], *((when, code_a if code_a is not None else code_b) for (when, code_a), (_, code_b) in nodes))


def _class_params(signature: Signature, graph: Graph) -> list[str]:
    """Names of a block class's constructor parameters, from what it prints (its combined signature, over
    all its instances): the input sizes its code or conditions use, then the block's parameters."""
    lines: list[str] = []
    for when, code in signature[1:]:
        if code is not None:  # a layer no instance has is not printed, nor is its condition
            lines += [when or "", *code]
    used = _names([*_used_vars(list(signature[0]), lines), *lines])
    assert graph.call_input is not None and graph.block_params is not None
    names = block_dim_names(graph, graph.call_input.rank)
    return [d for d in names if d in used] + list(graph.block_params)


def _when_source(graph: Graph, node: Node) -> str | None:
    """A block layer's `when` condition as its class's `__init__` tests it (None where nothing is tested):
    block parameters, vars and named dims by name (they are the constructor's parameters and its locals),
    the layer's input sizes (`in_features`) as expressions over them, spec constants as their values.

    Every instance of a class tests the same text, so one class serves instances with and without the layer.
    A condition that settles to `True` or `False` (over constants only) is the same for all of them.
    """
    if not graph.is_block or not isinstance(node.when, Expr):
        return None
    return _class_source(graph, node.when, list(node.inputs_types), condition=True)


def _class_source(graph: Graph, expr: Expr, inputs: list[TensorType], condition: bool) -> str:
    """A block's expression in its class's `__init__`: block parameters, vars and named dims by name, the
    sizes of `inputs` (in_features, ...) as their symbolic expressions, spec constants as their values; then
    comparisons of constants folded (`2 == 2` is a lint), and in a `condition` the `and`, `or`, `not` and
    `if` they settle."""
    assert graph.block_params is not None
    local = {*graph.block_params, *graph.var_values, *(graph.input_dims or ())}
    env = {key: value for key, value in graph.constants.items() if key not in local}
    env.update(input_names(inputs))
    source = substitute(expr.tree, {key: value for key, value in env.items() if key in expr.names})
    tree = _FoldComparisons().visit(ast.parse(source, mode="eval").body)
    return ast.unparse(_settle(tree) if condition else tree)


class _FoldComparisons(ast.NodeTransformer):
    """Replaces each comparison of constants (no names) with its value."""

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if any(isinstance(n, ast.Name) for n in ast.walk(node)):
            return node
        try:
            return ast.Constant(parse(ast.unparse(node), max_chars=100_000).evaluate({}))
        except ExprError:
            return node


def _settle(node: ast.expr) -> ast.expr:
    """A condition (only its truth matters) without the constant operands that do not decide it, or the
    constant that does: `True and k > 1` -> `k > 1`, `not False or p > 0.5` -> `True`."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        operand = _settle(node.operand)
        return ast.Constant(not operand.value) if isinstance(operand, ast.Constant) else ast.UnaryOp(ast.Not(), operand)
    if isinstance(node, ast.BoolOp):
        neutral = isinstance(node.op, ast.And)  # the truth an operand may have without deciding the result
        values = []
        for value in map(_settle, node.values):
            if not isinstance(value, ast.Constant):
                values.append(value)
            elif bool(value.value) != neutral:
                return ast.Constant(not neutral)
        return ast.BoolOp(node.op, values) if len(values) > 1 else values[0] if values else ast.Constant(neutral)
    if isinstance(node, ast.IfExp):
        test = _settle(node.test)
        if isinstance(test, ast.Constant):
            return _settle(node.body if test.value else node.orelse)
        return ast.IfExp(test, _settle(node.body), _settle(node.orelse))
    return node


def _merged_shape(types: list[TensorType]) -> str:
    """The comment for a value whose shape may differ between instances: differing sizes print as `?`."""
    batch = types[0].batch if len({t.batch for t in types}) == 1 else "B"
    if len({t.rank for t in types}) != 1:
        return f"({batch}, ...)"
    sizes = [{describe(TensorType((t.shape[i],))) for t in types} for i in range(types[0].rank)]
    return "(" + ", ".join([batch, *(s.pop()[4:-1] if len(s) == 1 else "?" for s in sizes)]) + ")"


def _aliases(graph: Graph, group: list[Graph]) -> dict[str, str]:
    """Each value's name, with nodes absent from every instance replaced by the value they pass on."""
    canonical = {name: name for name in graph.inputs}
    for index, node in enumerate(graph.nodes):
        absent = not any(g.nodes[index].present for g in group)
        canonical[node.name] = canonical[node.inputs[0]] if absent else node.name
    return canonical


def _consumers(graph: Graph, group: list[Graph], canonical: dict[str, str]) -> dict[str, int]:
    """How many printed nodes read each value (the output counts as one reader)."""
    counts = dict.fromkeys(canonical.values(), 0)
    for index, node in enumerate(graph.nodes):
        if any(g.nodes[index].present for g in group):
            for ref in node.inputs:
                counts[canonical[ref]] += 1
    counts[canonical[graph.output]] += 1
    return counts
