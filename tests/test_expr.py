"""The safe expression evaluator: what it computes, and everything it refuses."""

from __future__ import annotations

import ast
import time
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from specc.expr import MAX_EXPR_CHARS, MAX_MAGNITUDE, MAX_POWER_EXPONENT, Expr, ExprError, parse

ENV = {"planes": 64, "stride": 2, "in_channels": 256, "ratio": 0.25, "flag": True, "zero": 0}


def ev(source: str, env: dict[str, Any] | None = None) -> Any:
    return parse(source).evaluate(ENV if env is None else env)


def refused(source: str) -> ExprError:
    with pytest.raises(ExprError) as info:
        parse(source)
    assert info.value.kind == "syntax"
    return info.value


def failed(source: str, env: dict[str, Any] | None = None) -> ExprError:
    expr = parse(source)
    with pytest.raises(ExprError) as info:
        expr.evaluate(ENV if env is None else env)
    return info.value


# --- what it computes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("planes * 4", 256),
        ("planes + stride * 3", 70),
        ("(planes + stride) * 3", 198),
        ("in_channels // stride", 128),
        ("in_channels / stride", 128.0),
        ("in_channels % 10", 6),
        ("-7 // 2", -4),
        ("-7 % 3", 2),
        ("2 ** 3 ** 2", 512),  # right-associative
        ("-2 ** 2", -4),  # ** binds tighter than unary minus
        ("(-2) ** 2", 4),
        ("2 ** -1", 0.5),
        ("+planes", 64),
        ("--planes", 64),
        ("planes * ratio", 16.0),
        ("1_000 + 0x10 + 0o10", 1024),
        ("1e3", 1000.0),
        ("min(planes, stride)", 2),
        ("max(planes, stride, in_channels)", 256),
        ("min(max(1, stride), 10) * 2", 4),
        ("planes if stride == 1 else planes * 2", 128),
        ("1 if zero else 2", 2),
        ("1 if flag else 2 if zero else 3", 1),
    ],
)
def test_arithmetic(source: str, expected: Any) -> None:
    result = ev(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("stride != 1", True),
        ("stride == 2", True),
        ("1 < stride < 3", True),
        ("1 < stride < 2", False),
        ("3 > stride > 2", False),
        ("0 <= zero <= 0 < stride", True),
        ("stride < 1 < 1 // zero", False),  # a chain stops at the first false comparison
        ("planes >= 64", True),
        ("planes <= 63", False),
        ("stride != 1 or in_channels != planes", True),
        ("not flag", False),
        ("not zero", True),
        ("flag and stride", 2),  # `and`/`or` return an operand, as in Python
        ("zero or planes", 64),
        ("zero and 1 // zero", 0),  # short circuit: the division never happens
        ("flag or 1 // zero", True),
        ("1 if flag else 1 // zero", 1),
        ("1 // zero if zero else 7", 7),
        ("True + 1", 2),
    ],
)
def test_comparisons_and_logic(source: str, expected: Any) -> None:
    result = ev(source)
    assert result == expected
    assert type(result) is type(expected)


def test_names_and_source() -> None:
    expr = parse("  max(planes, stride) * planes + in_channels  ")
    assert isinstance(expr, Expr)
    assert expr.source == "max(planes, stride) * planes + in_channels"
    assert expr.names == {"planes", "stride", "in_channels"}  # min/max are not names


def test_evaluation_does_not_change_the_environment() -> None:
    env = dict(ENV)
    ev("planes * 2 + stride", env)
    assert env == ENV


# --- what it refuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("planes.bit_length", "Attribute"),
        ("planes.__class__", "Attribute"),
        ("planes[0]", "Subscript"),
        ("lambda: 1", "Lambda"),
        ("[i for i in planes]", "ListComp"),
        ("{i for i in planes}", "SetComp"),
        ("(i for i in planes)", "GeneratorExp"),
        ("{i: i for i in planes}", "DictComp"),
        ("(y := planes)", "NamedExpr"),
        ("[planes]", "List"),
        ("(planes, 1)", "Tuple"),
        ("{planes: 1}", "Dict"),
        ("f'{planes}'", "JoinedStr"),
        ("planes @ stride", "MatMult"),
        ("planes << 1", "LShift"),
        ("planes & 1", "BitAnd"),
        ("~planes", "Invert"),
        ("planes is stride", "Is"),
        ("planes in stride", "In"),
        ("await planes", "Await"),
    ],
)
def test_disallowed_syntax(source: str, what: str) -> None:
    error = refused(source)
    assert f"`{what}`" in error.message
    assert source in error.message


@pytest.mark.parametrize("source", ["'8'", "planes * '2'", "b'x'", "\"a\" + 'b'", "None", "...", "1j", "planes * 2j"])
def test_only_numbers_and_booleans_are_literals(source: str) -> None:
    assert "literals" in refused(source).message


@pytest.mark.parametrize(
    "source",
    [
        "abs(planes)",
        "int(ratio)",
        "__import__('os')",
        "eval('1')",
        "planes(2)",
        "max(planes, stride)(1)",
        "max(planes, 1, key=abs)",
        "min(planes, 1, default=0)",
        "getattr(planes, 'real')",
    ],
)
def test_only_min_and_max_may_be_called(source: str) -> None:
    assert "only min(...) and max(...) may be called" in refused(source).message


@pytest.mark.parametrize("source", ["max(planes)", "min()", "max(*planes)", "max(*planes, 1)"])
def test_min_max_take_two_or_more_plain_arguments(source: str) -> None:
    assert "two or more" in refused(source).message


@pytest.mark.parametrize("source", ["__import__", "__builtins__", "__class__ + 1", "max(__x, 1)"])
def test_dunder_names_are_refused(source: str) -> None:
    assert "is not allowed" in refused(source).message


@pytest.mark.parametrize(
    "source", ["planes *", "*planes", "planes = 1", "yield planes", "import os", "planes; stride", "", "   ", "1 +\n2"]
)
def test_invalid_syntax(source: str) -> None:
    error = refused(source)
    assert "invalid expression" in error.message


def test_very_long_expression_is_refused_before_parsing() -> None:
    source = " + ".join(["planes"] * 100)
    assert len(source) > MAX_EXPR_CHARS
    error = refused(source)
    assert str(MAX_EXPR_CHARS) in error.message
    assert len(error.message) < 100  # the expression itself is not echoed
    start = time.perf_counter()
    refused("(" * 10_000_000)
    assert time.perf_counter() - start < 1


def test_expression_at_the_length_limit_is_fine() -> None:
    source = "1" + " + 1" * ((MAX_EXPR_CHARS - 1) // 4)
    assert len(source) <= MAX_EXPR_CHARS
    assert ev(source) == 1 + (MAX_EXPR_CHARS - 1) // 4


def test_deep_nesting_within_the_length_limit() -> None:
    assert ev("-" * (MAX_EXPR_CHARS - 1) + "1") == -1
    assert ev("not " * 49 + "0") is True
    with pytest.raises(ExprError):
        parse("(" * 100 + "1" + ")" * 100)


# --- failures while evaluating ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["planez", "in_channel", "x"])
def test_unknown_names_report_the_name(name: str) -> None:
    error = failed(f"planes + {name} * 2")
    assert error.kind == "name"
    assert error.name == name
    assert f"`{name}`" in error.message


def test_min_and_max_are_not_values() -> None:
    error = failed("min + 1")
    assert (error.kind, error.name) == ("name", "min")


@pytest.mark.parametrize(
    "source", ["planes / zero", "planes // zero", "planes % zero", "planes / (stride - 2)", "zero ** -1", "1 % 0.0"]
)
def test_division_by_zero_is_an_expr_error(source: str) -> None:
    error = failed(source)
    assert not isinstance(error, ZeroDivisionError)
    assert (error.kind, error.message) == ("eval", "division by zero")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("2 ** 10000", "exponent 10000 is too large"),
        (f"2 ** {MAX_POWER_EXPONENT + 1}", f"exponent {MAX_POWER_EXPONENT + 1} is too large"),
        ("2 ** -10000", "exponent -10000 is too large"),
        ("2 ** 64", "result is out of range"),
        ("planes ** 20", "result is out of range"),
        ("(in_channels * 1e15) ** 64", "result is out of range"),  # a float overflow, not OverflowError
        ("in_channels * 1e18", "result is out of range"),
        ("(0 - planes) ** 0.5", "result is not a real number"),
    ],
)
def test_huge_results_are_refused(source: str, message: str) -> None:
    start = time.perf_counter()
    error = failed(source)
    assert (error.kind, error.message) == ("eval", message)
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("source", ["1e999", "1e999 - 1e999", "planes * 1e999", "9" * 30])
def test_out_of_range_literals_are_refused(source: str) -> None:
    error = refused(source)
    assert "out of range" in error.message


def test_largest_magnitude_is_allowed() -> None:
    assert ev("2 ** 63") == MAX_MAGNITUDE
    assert ev("-(2 ** 63)") == -MAX_MAGNITUDE


def test_operands_must_be_numbers() -> None:
    error = failed("planes + name", {"planes": 1, "name": "relu"})
    assert error.kind == "eval"


# --- agreement with Python ----------------------------------------------------------------------

NAMES = {"a": 3, "b": -2, "c": 0, "d": 7}

# Every leaf is at most 9 ** 3 = 729 in magnitude and a tree has at most 6 leaves, so no value comes
# near MAX_MAGNITUDE: any disagreement is a real one, not a range refusal.
_ints = st.integers(min_value=-9, max_value=9).map(str)
_power = st.builds(lambda base, exp: f"{base} ** {exp}", st.integers(-9, 9), st.integers(0, 3))
_leaves = st.one_of(_ints, st.sampled_from(sorted(NAMES)), _power)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.builds(
        lambda x, op, y: f"({x} {op} {y})", children, st.sampled_from(["+", "-", "*", "/", "//", "%"]), children
    )
    compare = st.builds(
        lambda x, op1, y, op2, z: f"({x} {op1} {y} {op2} {z})",
        children,
        st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
        children,
        st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
        children,
    )
    logic = st.builds(lambda x, op, y: f"({x} {op} {y})", children, st.sampled_from(["and", "or"]), children)
    return st.one_of(
        binary,
        compare,
        logic,
        st.builds(lambda x: f"(not {x})", children),
        st.builds(lambda x: f"(-{x})", children),
        st.builds(lambda x, c, y: f"({x} if {c} else {y})", children, children, children),
        st.builds(lambda f, x, y: f"{f}({x}, {y})", st.sampled_from(["min", "max"]), children, children),
    )


expressions = st.recursive(_leaves, _extend, max_leaves=6)


def python_eval(source: str) -> Any:
    code = compile(ast.parse(source, mode="eval"), "<expr>", "eval")
    return eval(code, {"__builtins__": {}, "min": min, "max": max}, dict(NAMES))  # the oracle, on generated text


@settings(max_examples=400, deadline=None)
@given(expressions)
@example("(a // c)")
@example("(c and (a // c))")
@example("(-3 ** 2)")
@example("(1 < a < 4)")
def test_agrees_with_python(source: str) -> None:
    assume(len(source) <= MAX_EXPR_CHARS)
    try:
        expected = python_eval(source)
    except ZeroDivisionError:
        error = failed(source, NAMES)
        assert (error.kind, error.message) == ("eval", "division by zero")
        return
    result = ev(source, NAMES)
    assert result == expected
    assert type(result) is type(expected)
