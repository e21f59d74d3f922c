"""The one naming authority: which spec names are valid identifiers, and unique names for generated code."""

from __future__ import annotations

import builtins
import keyword
import re

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)

# Attributes of torch.nn.Module (checked against the installed torch by tests/test_naming.py):
# a submodule with one of these names would shadow the method or break the module.
MODULE_ATTRIBUTES = frozenset(
    [
        "T_destination",
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
# Names the generated code itself uses.
# Classes the generated code imports or defines for some ops (see `HelperClass` in specc/ops/base.py).
GENERATED_CLASSES = frozenset({"OrderedDict", "SinusoidalPositionalEncoding"})
GENERATED_NAMES = frozenset({"self", "torch", "nn", "F", "x", "model", "build_model", "example_inputs", "annotations"})


def name_problem(name: str) -> str | None:
    """Why `name` cannot be used for a node, parameter or input in generated code; None if it can."""
    if not _IDENTIFIER.match(name):
        return "names must be ASCII identifiers: a letter or `_`, then letters, digits or `_` (at most 64)"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"`{name}` is a Python keyword"
    if name.startswith("__"):
        return "names must not start with `__`"
    if name in dir(builtins):
        return f"`{name}` is a Python builtin"
    if name in MODULE_ATTRIBUTES:
        return f"`{name}` is an attribute of torch.nn.Module"
    if name in GENERATED_NAMES:
        return f"`{name}` is used by the generated code"
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
    if name in GENERATED_CLASSES:
        return f"`{name}` is a class the generated code uses"
    return None


class Namespace:
    """Hands out unique identifiers: taken names get `_1`, `_2`, ... suffixes (like torch.fx)."""

    def __init__(self, reserved: frozenset[str] | set[str] = frozenset()) -> None:
        self._used: set[str] = set(reserved)

    def claim(self, name: str) -> None:
        self._used.add(name)

    def __contains__(self, name: str) -> bool:
        return name in self._used

    def create(self, stem: str) -> str:
        """A fresh name `stem1`, `stem2`, ... (numbered from 1, as people name layers)."""
        index = 1
        while f"{stem}{index}" in self._used or name_problem(f"{stem}{index}"):
            index += 1
        name = f"{stem}{index}"
        self._used.add(name)
        return name
