"""The grammar of the safe condition language, checked without evaluating anything.

A condition is a Python-like expression: comparisons, `and`/`or`/`not`, arithmetic, `in`,
literals, `x if c else y`, dotted names into the namespace `{input, context, results, globals}`,
subscripts, and calls to the functions in `ALLOWED_FUNCTIONS` only. No attribute may start
with an underscore, so dunders are unreachable. `policies` evaluates what this module accepts.
"""

from __future__ import annotations

import ast
from typing import Final

NAMESPACE_ROOTS: Final = frozenset({"input", "context", "results", "globals"})
"""Top-level names an expression or mapping path may start from."""

LITERAL_NAMES: Final = frozenset({"True", "False", "None", "true", "false", "null"})
"""Names that are literals (Python and YAML/JSON spellings)."""

ALLOWED_FUNCTIONS: Final = frozenset(
    {
        "len",
        "abs",
        "min",
        "max",
        "round",
        "int",
        "float",
        "str",
        "bool",
        "lower",
        "upper",
        "startswith",
        "endswith",
        "contains",
        "exists",
    }
)
"""The only functions an expression may call."""

MAX_EXPRESSION_LENGTH: Final = 2000

_ALLOWED_NODES: Final = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.List,
    ast.Tuple,
    ast.Call,
    ast.IfExp,
)


def check_expression(source: str) -> str | None:
    """Return why `source` is not a valid safe expression, or None when it is."""
    if not isinstance(source, str) or not source.strip():
        return "expression is empty; write a condition such as `context.total > 100`"
    if len(source) > MAX_EXPRESSION_LENGTH:
        return f"expression is longer than {MAX_EXPRESSION_LENGTH} characters"
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        return f"syntax error in `{source}`{where}: {exc.msg}"
    for node in ast.walk(tree):
        problem = _check_node(node, source)
        if problem:
            return problem
    return None


def _check_node(node: ast.AST, source: str) -> str | None:
    if not isinstance(node, _ALLOWED_NODES):
        return (
            f"`{type(node).__name__}` is not allowed in `{source}`; use comparisons, "
            "and/or/not, arithmetic, `in`, literals and dotted names"
        )
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        return f"attribute `{node.attr}` is not allowed in `{source}` (names starting with _)"
    if isinstance(node, ast.Name):
        name = node.id
        if name.startswith("_"):
            return f"name `{name}` is not allowed in `{source}` (names starting with _)"
        if name not in NAMESPACE_ROOTS | LITERAL_NAMES | ALLOWED_FUNCTIONS:
            roots = ", ".join(sorted(NAMESPACE_ROOTS))
            return f"unknown name `{name}` in `{source}`; names start with one of {roots}"
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in ALLOWED_FUNCTIONS:
            allowed = ", ".join(sorted(ALLOWED_FUNCTIONS))
            return f"only these functions may be called in `{source}`: {allowed}"
        if node.keywords:
            return f"keyword arguments are not allowed in `{source}`"
    return None
