"""Evaluating the safe condition language over a run's namespace.

`state.check_expression` defines the grammar; this module gives it meaning, using simpleeval
rather than `eval`. Conditions are evaluated often, so parsed expressions are cached.

Semantics beyond plain Python:

- `context.order.total` reads `namespace["context"]["order"]["total"]`; a missing name or key
  anywhere along the way, or a step into something that is not a mapping, gives None.
- `x[0]` indexes lists, tuples and strings; an index out of range gives None.
- `<`, `<=`, `>`, `>=` with None on either side are False; `==` and `!=` compare None as usual.
- `x in None` is False and `x not in None` is True.
- `true`, `false` and `null` are literals, like `True`, `False` and `None`.
- Only the functions in `ALLOWED_FUNCTIONS` can be called, and only by name.

Defences that hold even for an expression the grammar check never saw: attributes are looked
up as mapping keys, never with `getattr`; attribute names starting with `_` are refused; only
the node types of the grammar are evaluated; `%` string formatting and list repetition are
refused (both can allocate without bound).
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from simpleeval import (
    EvalWithCompoundTypes,
    FeatureNotAvailable,
    InvalidExpression,
    NameNotDefined,
    safe_add,
    safe_mult,
)

from state import NAMESPACE_ROOTS, ExpressionError, check_expression

_LITERALS: Final[Mapping[str, object]] = {
    "True": True,
    "true": True,
    "False": False,
    "false": False,
    "None": None,
    "null": None,
}


def _lower(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"lower() takes a string, got {type(value).__name__}")
    return value.lower()


def _upper(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"upper() takes a string, got {type(value).__name__}")
    return value.upper()


def _startswith(value: object, prefix: object) -> bool:
    if value is None:
        return False
    if not isinstance(value, str) or not isinstance(prefix, str):
        raise TypeError("startswith() takes two strings")
    return value.startswith(prefix)


def _endswith(value: object, suffix: object) -> bool:
    if value is None:
        return False
    if not isinstance(value, str) or not isinstance(suffix, str):
        raise TypeError("endswith() takes two strings")
    return value.endswith(suffix)


def _contains(container: Any, item: object) -> bool:
    return container is not None and item in container


def _exists(value: object) -> bool:
    return value is not None


_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "lower": _lower,
    "upper": _upper,
    "startswith": _startswith,
    "endswith": _endswith,
    "contains": _contains,
    "exists": _exists,
}


def _ordered(compare: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def none_is_false(left: Any, right: Any) -> Any:
        return left is not None and right is not None and compare(left, right)

    return none_is_false


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str | bytes):
        raise TypeError("`%` string formatting is not supported; compare or concatenate instead")
    return left % right


def _multiply(left: Any, right: Any) -> Any:
    if isinstance(left, list | tuple) or isinstance(right, list | tuple):
        raise TypeError("lists cannot be repeated with `*`")
    return safe_mult(left, right)


_OPERATORS: Final[Mapping[type[ast.AST], Callable[..., Any]]] = {
    ast.Add: safe_add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _modulo,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: _ordered(operator.lt),
    ast.LtE: _ordered(operator.le),
    ast.Gt: _ordered(operator.gt),
    ast.GtE: _ordered(operator.ge),
    ast.In: lambda item, container: container is not None and item in container,
    ast.NotIn: lambda item, container: container is None or item not in container,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _lookup(container: Any, key: Any) -> Any:
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(container, list | tuple | str) and type(key) is int:
        try:
            return container[key]
        except IndexError:
            return None
    return None


class _SafeEvaluator(EvalWithCompoundTypes):  # type: ignore[misc]  # simpleeval is untyped
    """simpleeval restricted to the grammar, reading names from one namespace."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        super().__init__(operators=dict(_OPERATORS), names={})
        # EvalWithCompoundTypes adds list(), dict(), set() ...; keep exactly the allow-list.
        self.functions = dict(_FUNCTIONS)
        # Only the node types of the grammar: anything else (lambda, comprehension, f-string,
        # dict, set, slice) is refused here even if the grammar check was skipped.
        self.nodes = {
            ast.Name: self._eval_name,
            ast.Constant: self._eval_constant,
            ast.Attribute: self._eval_attribute,
            ast.Subscript: self._eval_subscript,
            ast.Call: self._eval_call,
            ast.List: self._eval_list,
            ast.Tuple: self._eval_tuple,
            ast.UnaryOp: self._eval_unaryop,
            ast.BinOp: self._eval_binop,
            ast.BoolOp: self._eval_boolop,
            ast.Compare: self._eval_compare,
            ast.IfExp: self._eval_ifexp,
        }
        self._namespace = namespace

    def _eval_name(self, node: ast.Name) -> Any:
        name = node.id
        if name in _LITERALS:
            return _LITERALS[name]
        if name in NAMESPACE_ROOTS:
            return self._namespace.get(name)
        if name in _FUNCTIONS:
            raise InvalidExpression(f"`{name}` is a function; call it, e.g. `{name}(x)`")
        raise NameNotDefined(name, self.expr)

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_"):
            raise FeatureNotAvailable(f"attribute `{node.attr}` is not allowed (starts with _)")
        return _lookup(self._eval(node.value), node.attr)

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        return _lookup(self._eval(node.value), self._eval(node.slice))

    def _eval_call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise FeatureNotAvailable("only the allowed functions can be called, by name")
        if node.keywords:
            raise FeatureNotAvailable("keyword arguments are not allowed")
        return _FUNCTIONS[node.func.id](*(self._eval(arg) for arg in node.args))


@functools.lru_cache(maxsize=1024)
def _parse(source: str) -> ast.expr:
    problem = check_expression(source)
    if problem is not None:
        raise ExpressionError(problem)
    return ast.parse(source.strip(), mode="eval").body


def evaluate(source: str, namespace: Mapping[str, Any]) -> Any:
    """Evaluate the safe expression `source` over `namespace` and return its value.

    `namespace` maps the roots `input`, `context`, `results` and `globals` to plain data.
    Raises `ExpressionError` when the expression is invalid or unsafe, or when evaluating it
    fails (for example adding a string to a number); the message names the expression.

    Example:
        `evaluate("context.order.total * 2", {"context": {"order": {"total": 21}}})` is 42.
    """
    tree = _parse(source)
    try:
        return _SafeEvaluator(namespace).eval(source, previously_parsed=tree)
    except RecursionError as exc:
        raise ExpressionError(
            f"`{source}` is nested too deeply to evaluate; split it into simpler conditions"
        ) from exc
    except (InvalidExpression, ArithmeticError, LookupError, TypeError, ValueError) as exc:
        cause = str(exc) if isinstance(exc, InvalidExpression) else f"{type(exc).__name__}: {exc}"
        raise ExpressionError(f"cannot evaluate `{source}`: {cause}") from exc


def evaluate_condition(source: str, namespace: Mapping[str, Any]) -> bool:
    """Evaluate `source` like `evaluate` and return whether the result is truthy.

    Example:
        `evaluate_condition("exists(results.review) and results.review.score >= 0.8", ns)`
    """
    return bool(evaluate(source, namespace))
