"""`DocumentedModel`: a model whose field docstrings are its fields' descriptions.

Pydantic's `use_attribute_docstrings` does the same, but on Python < 3.13 it finds each
class's source by walking the stack and resolving the path of every loaded module, then
tokenizes the class: about 60 ms of `import orchestrator`. Here each module's source is read
and parsed once, with the same rule (a string right after an annotated assignment), and the
descriptions are set before the schema is built, so the JSON Schema is the same.
"""

from __future__ import annotations

import ast
import gc
import inspect
import sys
from functools import cache
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ConfigDict


class DocumentedModel(BaseModel):
    """Base of the models whose field docstrings appear in their JSON Schema.

    Example:
        ```python
        class Target(DocumentedModel):
            seconds: float = 1.0
            \"\"\"How long it may take.\"\"\"
        ```
        `Target.model_fields["seconds"].description == "How long it may take."`
    """

    # the schema is built on first use (validation, `model_json_schema()`), so the
    # descriptions set by `__pydantic_init_subclass__` are in it
    model_config = ConfigDict(defer_build=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Give the fields their docstrings before the schema is built."""
        super().__pydantic_init_subclass__(**kwargs)
        docs = class_field_docs(cls.__module__, cls.__qualname__)
        for name, field in cls.__pydantic_fields__.items():
            if field.description is None and name in docs:
                field.description = docs[name]


def class_field_docs(module: str, qualname: str) -> dict[str, str]:
    """`{field: docstring}` of the class `qualname` defined at the top of `module`."""
    return _module_field_docs(module).get(qualname, {})


@cache
def _module_field_docs(module: str) -> dict[str, dict[str, str]]:
    path = getattr(sys.modules.get(module), "__file__", None)
    try:
        with open(path or "", encoding="utf-8") as source:
            text = source.read()
    except (OSError, UnicodeDecodeError):
        return {}  # no source (a frozen or compiled-only install): no descriptions, as pydantic
    # The tree's thousands of nodes (freed with it: no cycles) would otherwise start a full
    # collection of everything imported so far: 20-50 ms, against 1-2 ms for the parse.
    collecting = gc.isenabled()
    gc.disable()
    try:
        tree = ast.parse(text)
        return {
            node.name: _attribute_docs(node.body)
            for node in tree.body
            if isinstance(node, ast.ClassDef)
        }
    except SyntaxError:
        return {}
    finally:
        if collecting:
            gc.enable()


def _attribute_docs(body: list[ast.stmt]) -> dict[str, str]:
    docs = {}
    for before, node in pairwise(body):
        if (
            isinstance(before, ast.AnnAssign)
            and isinstance(before.target, ast.Name)
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docs[before.target.id] = inspect.cleandoc(node.value.value)
    return docs
