"""Shared field types of the spec document."""

import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from specc.naming import class_name_problem, name_problem

# A string that holds an expression. It must mention a name, so `"3"` stays a type error (strict types).
EXPR_PATTERN = r"(^|[^0-9.])[A-Za-z_]"
ExprStr = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=EXPR_PATTERN,
        description="An expression over parameters and input sizes, e.g. `planes * 4`.",
    ),
]


def _valid_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _valid_class_name(value: str) -> str:
    problem = class_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"), AfterValidator(_valid_name)]
ClassName = Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9_]{0,63}$"), AfterValidator(_valid_class_name)]
Scalar = int | float | bool


class StrictModel(BaseModel):
    """Base of every spec model: strict types (a bool is not an int, "3" is not 3), no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


def widen(annotation: Any) -> Any:
    """The document-level type of an op parameter: each int/float/bool may also be an expression."""
    origin = get_origin(annotation)
    if annotation in (int, float, bool):
        return Union[annotation, ExprStr]  # noqa: UP007
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        if base in (int, float, bool):
            return Union[annotation, ExprStr]  # noqa: UP007
        return Annotated[(widen(base), *metadata)]  # type: ignore[valid-type]
    if origin in (Union, types.UnionType):
        members: list[Any] = []
        for member in get_args(annotation):
            for widened in get_args(w) if get_origin(w := widen(member)) is Union else (w,):
                if widened not in members:
                    members.append(widened)
        return Union[tuple(members)]  # noqa: UP007
    if origin is list:
        return list[widen(get_args(annotation)[0])]  # type: ignore[misc]
    return annotation


def literal_strings(annotation: Any) -> frozenset[str]:
    """The string values a parameter accepts literally (e.g. padding's "same"); others are expressions."""
    origin = get_origin(annotation)
    if origin is Literal:
        return frozenset(a for a in get_args(annotation) if isinstance(a, str))
    if annotation is str:
        return frozenset({"*"})
    if origin in (Annotated, Union, types.UnionType, list) or isinstance(annotation, typing._GenericAlias):  # type: ignore[attr-defined]
        found: set[str] = set()
        for arg in get_args(annotation):
            found |= literal_strings(arg)
        return frozenset(found)
    return frozenset()
