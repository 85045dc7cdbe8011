"""Field descriptions come from the fields' docstrings (`DocumentedModel`), exactly as pydantic's
own `use_attribute_docstrings` would give them, in `model_fields` and in the JSON Schema."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field
from pydantic._internal._docs_extraction import extract_docstrings_from_cls

from state import (
    AdvancedWorkflow,
    ApprovalConfig,
    Condition,
    EnterpriseWorkflowState,
    OptimizedFrom,
    RetryPolicy,
    RouterConfig,
    SlaTargets,
    StepResult,
    WebhookConfig,
    WorkflowStep,
)
from state._field_docs import DocumentedModel, class_field_docs

DOCUMENTED: list[type[BaseModel]] = [
    AdvancedWorkflow,
    WorkflowStep,
    RetryPolicy,
    SlaTargets,
    Condition,
    ApprovalConfig,
    WebhookConfig,
    RouterConfig,
]
"""Models whose JSON Schema carries the field docstrings."""
UNDOCUMENTED = [EnterpriseWorkflowState, StepResult, OptimizedFrom]
"""Models whose docstrings stay out of the schema (as before `DocumentedModel`)."""


def _pydantic_docs(model: type[BaseModel]) -> dict[str, str]:
    """The docstrings pydantic's own reader finds for the model's fields."""
    docs = extract_docstrings_from_cls(model, use_inspect=True)
    return {name: doc for name, doc in docs.items() if name in model.model_fields}


def _schema_descriptions(schema: dict[str, Any]) -> dict[str, str]:
    if "$ref" in schema:  # a self-referencing model (WorkflowStep) is one of its own $defs
        schema = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return {
        name: prop["description"]
        for name, prop in schema.get("properties", {}).items()
        if "description" in prop
    }


@pytest.mark.parametrize("model", DOCUMENTED, ids=lambda m: m.__name__)
def test_descriptions_are_pydantics_docstrings(model: type[BaseModel]) -> None:
    """Every field's description is the docstring pydantic's own reader finds for it."""
    assert issubclass(model, DocumentedModel)
    expected = _pydantic_docs(model)
    assert expected, "a documented model with no field docstrings"
    described = {n: f.description for n, f in model.model_fields.items() if f.description}
    assert described == expected


@pytest.mark.parametrize("model", DOCUMENTED, ids=lambda m: m.__name__)
def test_json_schema_carries_the_docstrings(model: type[BaseModel]) -> None:
    """The model's JSON Schema (validation and serialization) describes each field by its
    docstring, under its alias where it has one."""
    aliases = {n: f.alias or n for n, f in model.model_fields.items()}
    expected = {aliases[n]: doc for n, doc in _pydantic_docs(model).items()}
    for mode in ("validation", "serialization"):
        assert _schema_descriptions(model.model_json_schema(mode=mode)) == expected


def test_nested_schemas_carry_the_docstrings() -> None:
    """`AdvancedWorkflow`'s schema describes the nested models' fields by their docstrings."""
    defs = AdvancedWorkflow.model_json_schema()["$defs"]
    for model in DOCUMENTED[1:]:
        aliases = {n: f.alias or n for n, f in model.model_fields.items()}
        expected = {aliases[n]: doc for n, doc in _pydantic_docs(model).items()}
        assert _schema_descriptions(defs[model.__name__]) == expected, model.__name__


@pytest.mark.parametrize("model", UNDOCUMENTED, ids=lambda m: m.__name__)
def test_other_models_keep_descriptions_out(model: type[BaseModel]) -> None:
    """Models that never put docstrings in their schema still do not."""
    assert not issubclass(model, DocumentedModel)
    assert _pydantic_docs(model), "the model documents its fields in source"
    assert _schema_descriptions(model.model_json_schema()) == {}


def test_an_explicit_description_wins() -> None:
    """A `Field(description=...)` wins over the docstring; a field with neither has none."""

    class Target(DocumentedModel):
        label: str = Field(default="", description="given")
        """Not used: the Field's description wins."""
        bare: int = 0

    assert Target.model_fields["label"].description == "given"
    assert Target.model_fields["bare"].description is None
    assert Target.model_json_schema()["properties"]["label"]["description"] == "given"


def test_docs_of_a_top_level_class_are_read_from_source() -> None:
    """`class_field_docs` reads a module's top-level class docstrings, cleaned like pydantic."""
    docs = class_field_docs("state._step", "WorkflowStep")
    assert docs["isolation"].startswith("Where a sync action runs: `thread`")
    assert "\n    " not in docs["isolation"]
    assert docs == extract_docstrings_from_cls(WorkflowStep, use_inspect=True)
