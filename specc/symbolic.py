"""Sizes that remember where they came from, so one block class can serve many instances.

A block is inferred once per instance with concrete numbers, as usual; but its parameters and
input sizes are `Dim`s: ints that also carry a source expression (`planes`, `in_channels`).
Arithmetic on them builds the expression alongside the value, so a constructor argument that was
inferred as 256 in one instance prints as `planes * 4` in the block's class. Comparisons and every
shape check use the concrete value, so inference itself is unchanged. The code generator checks that
all instances of a block print the same class; that check is what makes this sound.
"""

from __future__ import annotations

import ast
from typing import Any

Terms = tuple[tuple[str, int], ...]


class Dim(int):
    """An int with a symbolic linear form: sum(coef * atom) + const. Atoms are names or (expressions)."""

    terms: Terms
    const: int

    def __new__(cls, value: int, terms: Terms, const: int = 0) -> Dim:
        obj = super().__new__(cls, value)
        obj.terms = terms
        obj.const = const
        return obj

    @classmethod
    def named(cls, value: int, name: str) -> Dim:
        return cls(value, ((name, 1),), 0)

    @property
    def source(self) -> str:
        return render(self)

    def __repr__(self) -> str:
        return f"Dim({int(self)}, {self.source!r})"

    def __str__(self) -> str:
        return int.__repr__(self)

    # Linear operations keep the linear form; everything else becomes an opaque atom.
    def __add__(self, other: Any) -> Any:
        return _linear(self, other, 1) if isinstance(other, int) and not isinstance(other, bool) else NotImplemented

    def __radd__(self, other: Any) -> Any:
        return _linear(other, self, 1) if isinstance(other, int) and not isinstance(other, bool) else NotImplemented

    def __sub__(self, other: Any) -> Any:
        return _linear(self, other, -1) if isinstance(other, int) and not isinstance(other, bool) else NotImplemented

    def __rsub__(self, other: Any) -> Any:
        return _linear(other, self, -1) if isinstance(other, int) and not isinstance(other, bool) else NotImplemented

    def __neg__(self) -> Any:
        return _scale(self, -1)

    def __pos__(self) -> Any:
        return self

    def __mul__(self, other: Any) -> Any:
        if not isinstance(other, int) or isinstance(other, bool):
            return NotImplemented
        if not isinstance(other, Dim):
            return _scale(self, other)
        if not other.terms:
            return _scale(self, other.const)
        return _atom(int(self) * int(other), f"{operand(self, left=True)} * {operand(other)}")

    def __rmul__(self, other: Any) -> Any:
        return self.__mul__(other)

    def __floordiv__(self, other: Any) -> Any:
        return _binary(self, other, "//", lambda a, b: a // b)

    def __rfloordiv__(self, other: Any) -> Any:
        return _binary(other, self, "//", lambda a, b: a // b)

    def __mod__(self, other: Any) -> Any:
        return _binary(self, other, "%", lambda a, b: a % b)

    def __rmod__(self, other: Any) -> Any:
        return _binary(other, self, "%", lambda a, b: a % b)

    def __pow__(self, other: Any) -> Any:
        return _binary(self, other, "**", lambda a, b: a**b)

    def __hash__(self) -> int:
        return int.__hash__(self)

    def __deepcopy__(self, memo: Any) -> Dim:
        return self

    def __reduce__(self) -> Any:
        return (Dim, (int(self), self.terms, self.const))


def _lin(x: int) -> tuple[dict[str, int], int]:
    if isinstance(x, Dim):
        return dict(x.terms), x.const
    return {}, int(x)


def _make(value: int, terms: dict[str, int], const: int) -> int:
    kept = tuple((atom, coef) for atom, coef in terms.items() if coef)
    if not kept:
        return int(value)
    return Dim(value, kept, const)


def _linear(a: int, b: int, sign: int) -> int:
    terms_a, const_a = _lin(a)
    terms_b, const_b = _lin(b)
    terms = dict(terms_a)
    for atom, coef in terms_b.items():
        terms[atom] = terms.get(atom, 0) + sign * coef
    return _make(int(a) + sign * int(b), terms, const_a + sign * const_b)


def _scale(a: Dim, factor: int) -> int:
    terms, const = _lin(a)
    return _make(int(a) * factor, {k: v * factor for k, v in terms.items()}, const * factor)


def _atom(value: int, source: str) -> Dim:
    return Dim(value, ((f"({source})", 1),), 0)


def _binary(a: Any, b: Any, op: str, fn: Any) -> Any:
    if not isinstance(a, int) or not isinstance(b, int) or isinstance(a, bool) or isinstance(b, bool):
        return NotImplemented
    value = fn(int(a), int(b))
    if op == "//" and not isinstance(b, Dim) and b == 1:
        return a
    if not isinstance(a, Dim) and not isinstance(b, Dim):
        return value
    return _atom(value, f"{operand(a, left=op != '**')} {op} {operand(b)}")


def render(x: Any) -> str:
    """Python source of a value: a Dim's expression, or the literal."""
    if not isinstance(x, Dim):
        return repr(x)
    parts: list[str] = []
    for atom, coef in x.terms:
        magnitude = abs(coef)
        if magnitude == 1 and (len(x.terms) > 1 or x.const):
            atom = _unwrap_product(atom)
        text = atom if magnitude == 1 else f"{atom} * {magnitude}" if atom.isidentifier() else f"{magnitude} * {atom}"
        if not parts:
            parts.append(text if coef > 0 else f"-{text}")
        else:
            parts.append(f"+ {text}" if coef > 0 else f"- {text}")
    if x.const:
        parts.append(f"+ {x.const}" if x.const > 0 else f"- {-x.const}")
    source = " ".join(parts)
    return source[1:-1] if _is_wrapped_atom(source) else source


def operand(x: Any, left: bool = False) -> str:
    """Source of `x` safe to use as an operand of `*`, `//`, `%`.

    A left operand that is itself a product keeps no parentheses (`a * b // 64`): these operators
    have one precedence and group from the left.
    """
    text = render(x)
    if text.isidentifier() or (text.isdigit()):
        return text
    if left and _unwrap_product(f"({text})") == text and "**" not in text:
        return text
    return f"({text})"


_LOW_PRECEDENCE = (" + ", " - ", " if ", " else ", " and ", " or ", "not ", "==", "!=", "<", ">")


def _unwrap_product(atom: str) -> str:
    """`(a // b)` -> `a // b` inside a sum: `*`, `//`, `%`, `**` bind tighter than `+` and `-`."""
    if not _is_wrapped_atom(atom):
        return atom
    inner, depth, top = atom[1:-1], 0, []
    for ch in inner:
        depth += (ch == "(") - (ch == ")")
        top.append(ch if depth == 0 else "_")
    flat = "".join(top)
    return atom if any(op in flat for op in _LOW_PRECEDENCE) or flat.startswith("-") else inner


def _is_wrapped_atom(source: str) -> bool:
    if not (source.startswith("(") and source.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(source):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(source) - 1:
            return False
    return True


def substitute(tree: ast.expr, env: dict[str, Any]) -> str:
    """The source of an expression with each name replaced by its value's source (Dim or literal)."""

    class Replace(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in env and node.id not in ("min", "max"):
                return ast.parse(f"({render(env[node.id])})", mode="eval").body
            return node

    return ast.unparse(Replace().visit(ast.fix_missing_locations(_copy(tree))))


def _copy(tree: ast.expr) -> ast.expr:
    return ast.parse(ast.unparse(tree), mode="eval").body


def has_dim(value: Any) -> bool:
    if isinstance(value, Dim):
        return True
    if isinstance(value, (list, tuple)):
        return any(has_dim(v) for v in value)
    return False
