"""The one naming authority: which spec names are valid identifiers, and unique names for generated code."""

from __future__ import annotations

import builtins
import keyword
import re

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)

# Every attribute of torch.nn.Module but dunders (which no name may take): `dir(nn.Module)` and what
# `nn.Module.__init__` sets (`_modules`, `_parameters`, ...). A submodule with one of these names would
# shadow the method or break the module. Checked against the installed torch by tests/test_naming.py;
# kept static so that validating a spec needs no torch.
MODULE_ATTRIBUTES = frozenset(
    [
        "T_destination",
        "_apply",
        "_backward_hooks",
        "_backward_pre_hooks",
        "_buffers",
        "_call_impl",
        "_compiled_call_impl",
        "_forward_hooks",
        "_forward_hooks_always_called",
        "_forward_hooks_with_kwargs",
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_get_backward_hooks",
        "_get_backward_pre_hooks",
        "_get_name",
        "_is_full_backward_hook",
        "_load_from_state_dict",
        "_load_state_dict_post_hooks",
        "_load_state_dict_pre_hooks",
        "_maybe_warn_non_full_backward_hook",
        "_modules",
        "_named_members",
        "_non_persistent_buffers_set",
        "_parameters",
        "_register_load_state_dict_pre_hook",
        "_register_state_dict_hook",
        "_replicate_for_data_parallel",
        "_save_to_state_dict",
        "_slow_forward",
        "_state_dict_hooks",
        "_state_dict_pre_hooks",
        "_version",
        "_wrapped_call_impl",
        "add_module",
        "apply",
        "bfloat16",
        "buffers",
        "call_super_init",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "dump_patches",
        "eval",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "training",
        "type",
        "xpu",
        "zero_grad",
    ]
)
# What nn.Sequential adds to nn.Module: a sequential's child with one of these names is refused by
# `add_module` (KeyError "attribute already exists").
SEQUENTIAL_ATTRIBUTES = frozenset({"_get_item_by_idx", "append", "extend", "insert", "pop"})
# What nn.ModuleDict adds (repeats with `names` may become one; their names hold a digit, so none matches).
MODULE_DICT_ATTRIBUTES = frozenset({"clear", "items", "keys", "pop", "update", "values"})
# Classes the generated code imports or defines for some ops (see `HelperClass` in specc/ops/base.py).
GENERATED_CLASSES = frozenset({"OrderedDict", "SinusoidalPositionalEncoding"})
# Names the generated code itself uses.
GENERATED_NAMES = frozenset({"self", "torch", "nn", "F", "x", "model", "build_model", "example_inputs", "annotations"})
# The top-level names of the generated model.py besides its classes (imports, constants, functions; see
# templates/model.py.jinja and templates/transfer_*.py.jinja): a class must not replace one of them.
MODEL_GLOBALS = frozenset(
    {
        *("torch", "nn", "F", "math", "fnmatch", "OrderedDict"),
        *("INPUT_SHAPES", "INPUT_DTYPES", "PRETRAINED_MODEL", "PRETRAINED_WEIGHTS", "PRETRAINED_FILE"),
        *("NOT_LOADED", "FROZEN", "TRAINABLE"),
        *("build_model", "example_inputs", "torchvision_state_dict", "load_pretrained", "freeze", "_matches"),
    }
)
_BUILTINS = frozenset(dir(builtins))
_RESERVED_WITH_DIGITS = frozenset(
    name
    for name in (*_BUILTINS, *MODULE_ATTRIBUTES, *SEQUENTIAL_ATTRIBUTES, *MODULE_DICT_ATTRIBUTES, *GENERATED_NAMES)
    if any(ch.isdigit() for ch in name)
)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be used for a node, parameter or input in generated code; None if it can."""
    if not _IDENTIFIER.match(name):
        return "names must be ASCII identifiers: a letter or `_`, then letters, digits or `_` (at most 64)"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"`{name}` is a Python keyword"
    if name.startswith("__"):
        return "names must not start with `__`"
    if name in _BUILTINS:
        return f"`{name}` is a Python builtin"
    if name in MODULE_ATTRIBUTES:
        return f"`{name}` is an attribute of torch.nn.Module"
    if name in GENERATED_NAMES:
        return f"`{name}` is used by the generated code"
    if name in GENERATED_CLASSES:
        return f"`{name}` is a class the generated code uses"
    return None


def layer_name_problem(name: str, sequential: bool = False) -> str | None:
    """Why `name` cannot name a layer, an attribute of the generated nn.Module (with `sequential`, a child
    of an nn.Sequential); None if it can."""
    problem = name_problem(name)
    if problem:
        return problem
    if name.startswith("_"):
        # torch.nn.Module keeps its state in `_` attributes, and new torch versions add more.
        return "layer names must not start with `_` (torch.nn.Module keeps its own state in such attributes)"
    if sequential and name in SEQUENTIAL_ATTRIBUTES:
        return f"`{name}` is an attribute of torch.nn.Sequential"
    return None


def names_pattern_problem(pattern: str) -> str | None:
    """Why the `names` of a repeat's instances (`pattern` with `{i}` replaced by 0, 1, ...) cannot name
    layers; None if they can. The caller checks that `{i}` occurs once."""
    problem = layer_name_problem(pattern.replace("{i}", "0"))
    if problem:
        return problem
    # Every reserved name that an index could produce (`bfloat1{i}` -> `bfloat16`): only those with a digit.
    before, _, after = pattern.partition("{i}")
    produced = re.compile(re.escape(before) + "(?:0|[1-9][0-9]*)" + re.escape(after))
    clash = next((name for name in sorted(_RESERVED_WITH_DIGITS) if produced.fullmatch(name)), None)
    if clash is not None:
        return f"an instance would be called `{clash}`: {layer_name_problem(clash, sequential=True)}"
    return None


def class_name_problem(name: str) -> str | None:
    """Why `name` cannot name a generated class; None if it can."""
    problem = name_problem(name)
    if problem:
        return problem
    if not name[0].isupper():
        return "class names start with an upper-case letter (e.g. `LeNet`)"
    if name in {"Module", "Tensor", "Sequential", "Parameter"}:
        return f"`{name}` would be confused with torch's `{name}`"
    if name in MODEL_GLOBALS:
        return f"`{name}` is a top-level name of the generated model.py"
    return None


class Namespace:
    """Hands out unique identifiers: taken names get `1`, `2`, ... suffixes (as people name layers)."""

    def __init__(self, reserved: frozenset[str] | set[str] = frozenset()) -> None:
        self._used: set[str] = set(reserved)
        self._next: dict[str, int] = {}  # per stem: every lower index is taken, so `create` is O(1) amortised

    def claim(self, name: str) -> None:
        self._used.add(name)

    def __contains__(self, name: str) -> bool:
        return name in self._used

    def create(self, stem: str) -> str:
        """A fresh name `stem1`, `stem2`, ... (numbered from 1, as people name layers): the first free one."""
        index = self._next.get(stem, 1)
        while f"{stem}{index}" in self._used or name_problem(f"{stem}{index}"):
            index += 1
        name = f"{stem}{index}"
        self._used.add(name)
        self._next[stem] = index + 1
        return name
