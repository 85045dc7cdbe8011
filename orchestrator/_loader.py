"""Reading workflow definitions from YAML or JSON files, and their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from state import AdvancedWorkflow, DefinitionProblem, WorkflowDefinitionError


def load_workflow(path: str | Path) -> AdvancedWorkflow:
    """Load and validate a definition (`.yaml`, `.yml` or `.json`).

    Raises `WorkflowDefinitionError` listing every problem, including unreadable files.
    """
    source = str(path)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkflowDefinitionError(
            [DefinitionProblem("file", f"cannot read {source}: {exc.strerror or exc}")],
            source=source,
        ) from None
    is_json = file.suffix.lower() == ".json"
    import yaml  # here, not at the top: `import orchestrator` stays light

    try:
        data: Any = json.loads(text) if is_json else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise WorkflowDefinitionError(
            [DefinitionProblem("file", f"not valid {'JSON' if is_json else 'YAML'}: {exc}")],
            source=source,
        ) from None
    return AdvancedWorkflow.from_dict(data, source=source)


def workflow_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow definition (YAML field names)."""
    return AdvancedWorkflow.model_json_schema(by_alias=True, mode="validation")
