"""A tiny, safe expression language for spec parameters: `planes * 4`, `stride != 1 or in_channels != planes`.

Expressions are parsed with `ast` and checked against a whitelist before anything is evaluated:
numbers, names, `+ - * / // % **`, unary `-`/`+`, comparisons, `and`/`or`/`not`, `a if c else b`,
and calls of `min`/`max`. Nothing else (no attributes, subscripts, lambdas, strings, other calls),
so an expression can never reach Python's runtime. `eval` is never used.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_EXPR_CHARS = 200
MAX_POWER_EXPONENT = 64
MAX_MAGNITUDE = 2**63

Value = int | float | bool

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max}


class ExprError(Exception):
    """An expression is malformed (`kind` = "syntax"), names something unknown ("name"), or fails ("eval")."""

    def __init__(self, kind: str, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.name = name


@dataclass(frozen=True)
class Expr:
    """A parsed, whitelisted expression."""

    source: str
    tree: ast.expr

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name) and n.id not in _FUNCTIONS)

    def evaluate(self, env: Mapping[str, Any]) -> Value:
        return _eval(self.tree, env)


def parse(source: str, max_chars: int = MAX_EXPR_CHARS) -> Expr:
    """Parse and whitelist-check an expression; raises `ExprError("syntax", ...)`.

    `max_chars` bounds spec text; the compiler's own symbolic sizes may pass a larger bound.
    """
    if len(source) > max_chars:
        raise ExprError("syntax", f"expression is longer than {max_chars} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExprError("syntax", f"invalid expression `{source}`: {exc.msg}") from None
    for node in ast.walk(tree):
        _check_node(node, source)
    return Expr(source=source.strip(), tree=tree)


def _check_node(node: ast.AST, source: str) -> None:
    allowed = (
        ast.Constant,
        ast.Name,
        ast.Load,
        ast.BinOp,
        ast.UnaryOp,
        ast.BoolOp,
        ast.Compare,
        ast.IfExp,
        ast.Call,
        ast.And,
        ast.Or,
        ast.Not,
        ast.USub,
        ast.UAdd,
        *_BINARY,
        *_COMPARE,
    )
    if not isinstance(node, allowed):
        raise ExprError("syntax", f"`{type(node).__name__}` is not allowed in expressions (in `{source}`)")
    if isinstance(node, ast.Constant) and (
        isinstance(node.value, (str, bytes, complex)) or node.value is None or node.value is Ellipsis
    ):
        raise ExprError("syntax", f"only numbers and booleans may appear as literals (in `{source}`)")
    if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and not abs(node.value) <= MAX_MAGNITUDE:
        # `not <=` also catches `1e999`, which Python reads as infinity
        literal = ast.get_source_segment(source.strip(), node) or repr(node.value)
        raise ExprError("syntax", f"number {literal} is out of range (in `{source}`)")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
            raise ExprError("syntax", f"only min(...) and max(...) may be called (in `{source}`)")
        if len(node.args) < 2 or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExprError("syntax", f"min/max take two or more arguments (in `{source}`)")
    if isinstance(node, ast.Name) and node.id.startswith("__"):
        raise ExprError("syntax", f"name `{node.id}` is not allowed (in `{source}`)")


def _eval(node: ast.expr, env: Mapping[str, Any]) -> Value:
    if isinstance(node, ast.Constant):
        return node.value  # type: ignore[no-any-return]
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ExprError("name", f"unknown name `{node.id}`", name=node.id)
        return env[node.id]  # type: ignore[no-any-return]
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return not operand
        _require_number(operand)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, env), _eval(node.right, env)
        _require_number(left)
        _require_number(right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_POWER_EXPONENT:
            raise ExprError("eval", f"exponent {right} is too large")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ExprError("eval", "division by zero") from None
        except OverflowError:  # float ** float beyond the float range
            raise ExprError("eval", "result is out of range") from None
        if isinstance(result, complex):  # e.g. (-8) ** 0.5
            raise ExprError("eval", "result is not a real number")
        if not abs(result) <= MAX_MAGNITUDE:  # `not <=` also catches NaN (inf - inf)
            raise ExprError("eval", "result is out of range")
        return result  # type: ignore[no-any-return]
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        result_b: Value = is_and
        for value_node in node.values:
            result_b = _eval(value_node, env)
            if bool(result_b) != is_and:
                return result_b
        return result_b
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body, env) if _eval(node.test, env) else _eval(node.orelse, env)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](*(_eval(a, env) for a in node.args))  # type: ignore[no-any-return]
    raise ExprError("syntax", f"`{type(node).__name__}` is not allowed")  # unreachable after _check_node


def _require_number(value: Any) -> None:
    if not isinstance(value, (int, float)):
        raise ExprError("eval", f"expected a number, got {type(value).__name__}")
