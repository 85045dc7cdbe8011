"""Safe expressions: operators, None semantics, functions, refusal of unsafe input."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import _expressions, evaluate, evaluate_condition
from state import ALLOWED_FUNCTIONS, ExpressionError

NS: dict[str, Any] = {
    "input": {"applicant_id": "A-1", "amount": 250},
    "context": {
        "order": {"total": 150, "currency": "EUR", "lines": [{"sku": "x"}, {"sku": "y"}]},
        "items": [10, 20, 30],
        "name": "Alice",
        "flag": True,
        "nothing": None,
    },
    "results": {"step-1": {"score": 0.9}, "review": {"approved": False}},
    "globals": {"limit": 100},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", 3),
        ("'a' + 'b'", "ab"),
        ("7 - 2", 5),
        ("3 * 4", 12),
        ("'ab' * 2", "abab"),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("-context.order.total", -150),
        ("+input.amount", 250),
    ],
)
def test_arithmetic_operators(source: str, expected: object) -> None:
    """Arithmetic and unary operators behave as in Python."""
    assert evaluate(source, NS) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("context.order.total == 150", True),
        ("context.order.total != 150", False),
        ("context.order.total < 200", True),
        ("context.order.total <= 150", True),
        ("context.order.total > 150", False),
        ("context.order.total >= 150", True),
        ("100 < context.order.total < 200", True),
        ("context.order.currency is not None", True),
        ("context.nothing is None", True),
    ],
)
def test_comparison_operators(source: str, expected: bool) -> None:
    """Comparisons, including chained ones and `is`, behave as in Python."""
    assert evaluate(source, NS) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true and false", False),
        ("true or false", True),
        ("not context.flag", False),
        ("context.missing or 'fallback'", "fallback"),
        ("context.order.total and 'yes'", "yes"),
    ],
)
def test_boolean_operators(source: str, expected: object) -> None:
    """and/or/not short-circuit and return operands as in Python."""
    assert evaluate(source, NS) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("20 in context.items", True),
        ("40 not in context.items", True),
        ("'li' in context.name", True),
        ("'currency' in context.order", True),
        ("input.amount in [100, 250]", True),
        ("input.amount in (1, 2)", False),
    ],
)
def test_membership_operators(source: str, expected: bool) -> None:
    """`in` and `not in` work on lists, tuples, strings and mappings."""
    assert evaluate(source, NS) is expected


def test_conditional_expression() -> None:
    """`x if c else y` picks a branch."""
    assert evaluate("'big' if context.order.total > 100 else 'small'", NS) == "big"


@pytest.mark.parametrize(
    ("source", "expected"),
    [("true", True), ("false", False), ("null", None), ("True", True), ("None", None)],
)
def test_literal_names(source: str, expected: object) -> None:
    """true/false/null are literals, like True/False/None."""
    assert evaluate(source, NS) is expected


def test_dotted_names_read_nested_mappings() -> None:
    """context.order.total reads namespace['context']['order']['total']."""
    assert evaluate("context.order.total", NS) == 150


@pytest.mark.parametrize(
    "source",
    ["context.missing", "context.missing.deeper.still", "input.amount.value", "globals"],
)
def test_missing_names_are_none(source: str) -> None:
    """A missing name or key anywhere in a dotted path is None, not an error."""
    assert evaluate(source, {"context": {}, "input": {"amount": 5}}) is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("results['step-1'].score", 0.9),
        ("context.items[0]", 10),
        ("context.items[-1]", 30),
        ("context.order.lines[1].sku", "y"),
        ("context.name[0]", "A"),
        ("context.items[9]", None),
        ("context.items['x']", None),
        ("results['missing'].score", None),
    ],
)
def test_subscripts(source: str, expected: object) -> None:
    """Subscripts index mappings and sequences; a missing key or index is None."""
    assert evaluate(source, NS) == expected


@pytest.mark.parametrize(
    "source",
    ["context.missing < 1", "1 < context.missing", "context.missing >= 0", "null <= null"],
)
def test_ordering_with_none_is_false(source: str) -> None:
    """<, <=, >, >= with None on either side are False rather than an error."""
    assert evaluate(source, NS) is False


def test_equality_with_none_is_normal() -> None:
    """== and != treat None like any other value."""
    assert evaluate("context.missing == null", NS) is True
    assert evaluate("context.missing != null", NS) is False
    assert evaluate("context.order.total == null", NS) is False


def test_membership_in_none() -> None:
    """`x in None` is False and `x not in None` is True."""
    assert evaluate("1 in context.missing", NS) is False
    assert evaluate("1 not in context.missing", NS) is True


FUNCTION_CALLS: dict[str, tuple[str, object]] = {
    "len": ("len(context.items)", 3),
    "abs": ("abs(-3)", 3),
    "min": ("min(context.items)", 10),
    "max": ("max(1, 5, 2)", 5),
    "round": ("round(2.567, 1)", 2.6),
    "int": ("int('42')", 42),
    "float": ("float('1.5')", 1.5),
    "str": ("str(context.order.total)", "150"),
    "bool": ("bool(context.items)", True),
    "lower": ("lower(context.name)", "alice"),
    "upper": ("upper(context.order.currency)", "EUR"),
    "startswith": ("startswith(input.applicant_id, 'A-')", True),
    "endswith": ("endswith(context.name, 'ce')", True),
    "contains": ("contains(context.items, 20)", True),
    "exists": ("exists(context.order)", True),
}


def test_every_allowed_function_is_covered() -> None:
    """The function tests cover exactly the allow-list of the grammar."""
    assert set(FUNCTION_CALLS) == ALLOWED_FUNCTIONS


@pytest.mark.parametrize(("source", "expected"), FUNCTION_CALLS.values(), ids=FUNCTION_CALLS)
def test_allowed_functions(source: str, expected: object) -> None:
    """Each allowed function computes what its name says."""
    assert evaluate(source, NS) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("lower(context.missing)", None),
        ("upper(context.missing)", None),
        ("startswith(context.missing, 'a')", False),
        ("endswith(context.missing, 'a')", False),
        ("contains(context.missing, 1)", False),
        ("exists(context.missing)", False),
        ("exists(context.flag)", True),
    ],
)
def test_string_helpers_tolerate_none(source: str, expected: object) -> None:
    """The string helpers, contains() and exists() take None without failing."""
    assert evaluate(source, NS) == expected


def test_bare_function_name_is_refused() -> None:
    """A function name must be called, not used as a value."""
    with pytest.raises(ExpressionError, match="`len` is a function; call it"):
        evaluate("len", NS)


def test_condition_returns_a_bool() -> None:
    """evaluate_condition turns the value into a bool."""
    assert evaluate_condition("context.items", NS) is True
    assert evaluate_condition("context.missing", NS) is False


@pytest.mark.parametrize(
    "source",
    [
        "context.__class__",
        "().__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "context._private",
        "_secret",
        "lambda: 1",
        "__import__('os')",
        "import os",
        "open('/etc/passwd')",
        "eval('1')",
        "getattr(context, 'x')",
        "context.items.pop()",
        "[x for x in context.items]",
        "{'a': 1}",
        "f'{context}'",
        "len(context.items, key=1)",
        "context.items[0:2]",
        "x = 1",
        "os",
        "",
    ],
)
def test_unsafe_or_invalid_input_is_refused(source: str) -> None:
    """Dunders, private names, lambdas, imports and unlisted calls raise ExpressionError."""
    with pytest.raises(ExpressionError):
        evaluate(source, NS)


@pytest.fixture
def no_grammar_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Skip the grammar check, to test the evaluator's own defences."""
    _expressions._parse.cache_clear()
    monkeypatch.setattr(_expressions, "check_expression", lambda source: None)
    yield
    _expressions._parse.cache_clear()


@pytest.mark.usefixtures("no_grammar_check")
@pytest.mark.parametrize(
    "source",
    [
        "().__class__",
        "context.__class__.__mro__",
        "context._private",
        "context.items.copy()",
        "open('/etc/passwd')",
        "getattr(context, '__class__')",
        "(lambda: 1)()",
        "[c for c in 'ab']",
        "{1: 2}",
        "context.items[0:2]",
        "secret",
        "2 ** 8",
    ],
)
def test_evaluator_refuses_unsafe_input_without_the_grammar_check(source: str) -> None:
    """Even if the grammar check were bypassed, unsafe expressions raise ExpressionError."""
    with pytest.raises(ExpressionError):
        evaluate(source, NS)


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("'a' + 1", "TypeError"),
        ("1 / 0", "ZeroDivisionError"),
        ("len(5)", "TypeError"),
        ("context.missing + 1", "TypeError"),
        ("int('x')", "ValueError"),
        ("'a' < 1", "TypeError"),
        ("lower(5)", "lower\\(\\) takes a string"),
    ],
)
def test_runtime_errors_become_expression_errors(source: str, cause: str) -> None:
    """A failure while evaluating raises ExpressionError naming the expression and cause."""
    with pytest.raises(ExpressionError, match=rf"cannot evaluate `.+`: .*{cause}"):
        evaluate(source, NS)


def test_string_formatting_is_refused() -> None:
    """`%` on strings is refused: a format width can allocate without bound."""
    with pytest.raises(ExpressionError, match="string formatting is not supported"):
        evaluate("'%s' % 1", NS)


def test_list_repetition_is_refused() -> None:
    """`*` on lists is refused: nested repetition can allocate without bound."""
    with pytest.raises(ExpressionError, match="lists cannot be repeated"):
        evaluate("[[1] * 9999] * 9999", NS)


def test_huge_strings_are_refused() -> None:
    """String repetition is capped by simpleeval's length limit."""
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        evaluate("'abc' * 100000", NS)


def test_deep_nesting_is_refused() -> None:
    """An expression nested too deeply to evaluate raises ExpressionError."""
    with pytest.raises(ExpressionError, match="nested too deeply"):
        evaluate("-" * 1999 + "1", NS)


def test_syntax_errors_name_the_problem() -> None:
    """Invalid syntax raises ExpressionError with the grammar check's message."""
    with pytest.raises(ExpressionError, match=r"syntax error in `context\.total >`"):
        evaluate("context.total >", NS)


def test_parsed_expressions_are_cached() -> None:
    """Evaluating the same expression again reuses its parsed form."""
    source = "context.order.total > 149.5"
    evaluate(source, NS)
    hits = _expressions._parse.cache_info().hits
    evaluate(source, NS)
    assert _expressions._parse.cache_info().hits == hits + 1


@settings(max_examples=100, database=None)
@given(x=st.integers(), y=st.integers())
def test_comparison_matches_python(x: int, y: int) -> None:
    """For any integers, `context.x < context.y` agrees with Python."""
    assert evaluate("context.x < context.y", {"context": {"x": x, "y": y}}) == (x < y)


@settings(max_examples=100, database=None)
@given(x=st.integers(), y=st.integers())
def test_arithmetic_matches_python(x: int, y: int) -> None:
    """For any integers, arithmetic over dotted names agrees with Python."""
    ns = {"context": {"x": x, "y": y}}
    assert evaluate("context.x * 2 - context.y + 1", ns) == x * 2 - y + 1


@settings(max_examples=150, database=None)
@given(source=st.text(max_size=80))
def test_arbitrary_text_only_raises_expression_error(source: str) -> None:
    """Any text either evaluates or raises ExpressionError, never anything else."""
    with contextlib.suppress(ExpressionError):
        evaluate(source, NS)


TOKENS = [
    *("context", "results", "input", "globals", "items", "order", "total", "__class__", "_x"),
    *(".", "(", ")", "[", "]", ",", "0", "1", "-1", "2.5", "'a'", "'step-1'", "[]", "()"),
    *("+", "-", "*", "/", "//", "%", "<", "<=", "==", "!=", "in", "not", "and", "or", "is"),
    *("if", "else", "null", "true", "len", "lower", "min", "int", "str", "contains", "exists"),
]


@settings(max_examples=250, database=None)
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=12))
def test_token_soup_only_raises_expression_error(tokens: list[str]) -> None:
    """Random sequences of expression tokens evaluate or raise ExpressionError only."""
    source = " ".join(tokens)
    with contextlib.suppress(ExpressionError):
        evaluate(source, NS)
