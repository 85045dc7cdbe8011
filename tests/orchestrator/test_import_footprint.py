"""What `import orchestrator` loads in a fresh interpreter: counted by module name, not timed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import orchestrator

NOT_AT_IMPORT = [
    "procrastinate",
    "psycopg",
    "psycopg_pool",
    "langgraph.checkpoint.postgres",
    "langchain_core.tools",
    "langgraph.prebuilt",
    "langgraph.func",
    "prometheus_client",
    "yaml",
    "httpx",
    "opentelemetry",
    "orchestrator.optimizer",
    "orchestrator._metrics",
    "orchestrator._tracing",
    "orchestrator._watch",
    "orchestrator._cli",
]
"""Packages `import orchestrator` leaves to first use (workers, Postgres, agents, metrics,
YAML definitions, tracing, the CLI)."""


def _loaded_after(*imports: str) -> list[set[str]]:
    """The modules each import statement adds, in one fresh interpreter, in order."""
    code = (
        "import json, sys\n"
        "added = []\n"
        f"for statement in {list(imports)!r}:\n"
        "    before = set(sys.modules)\n"
        "    exec(statement)\n"
        "    added.append(sorted(set(sys.modules) - before))\n"
        "print(json.dumps(added))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return [set(names) for names in json.loads(done.stdout)]


def _under(package: str, modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


@pytest.fixture(scope="module")
def added_by_orchestrator() -> set[str]:
    """Modules `import orchestrator` adds to what `import langgraph.graph` loaded."""
    _, added = _loaded_after("import langgraph.graph", "import orchestrator")
    return added


@pytest.mark.parametrize("package", NOT_AT_IMPORT)
def test_import_leaves_package_to_first_use(added_by_orchestrator: set[str], package: str) -> None:
    """`import orchestrator` (after `import langgraph.graph`) loads nothing of `package`."""
    assert _under(package, added_by_orchestrator) == []


def test_import_alone_loads_no_worker_or_postgres_stack() -> None:
    """A bare `import orchestrator` loads neither procrastinate, psycopg nor PyYAML."""
    (loaded,) = _loaded_after("import orchestrator")
    assert "orchestrator._facade" in loaded  # the measurement saw the real import
    for package in ("procrastinate", "psycopg", "psycopg_pool", "yaml", "prometheus_client"):
        assert _under(package, loaded) == [], package


def test_every_public_name_imports() -> None:
    """Every name in `orchestrator.__all__` and `state.__all__` resolves in a fresh
    interpreter, the lazily imported ones included."""
    code = (
        "import orchestrator, state\n"
        "missing = [f'{m.__name__}.{n}' for m in (orchestrator, state) for n in m.__all__\n"
        "           if getattr(m, n, None) is None]\n"
        "print(missing)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
    assert "EnterpriseWorkflowOrchestrator" in orchestrator.__all__


def test_loading_yaml_definitions_imports_yaml_then() -> None:
    """The first YAML definition imports PyYAML, and a YAML syntax error is still reported."""
    code = (
        "import sys, tempfile, pathlib\n"
        "from orchestrator import load_workflow\n"
        "from state import WorkflowDefinitionError\n"
        "assert 'yaml' not in sys.modules\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "(d / 'w.yaml').write_text('name: w\\nsteps:\\n  - step_id: a\\n    action: x\\n')\n"
        "print(load_workflow(d / 'w.yaml').name, 'yaml' in sys.modules)\n"
        "(d / 'bad.yaml').write_text('name: [w\\n')\n"
        "try:\n"
        "    load_workflow(d / 'bad.yaml')\n"
        "except WorkflowDefinitionError as exc:\n"
        "    print('not valid YAML' in str(exc))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["w", "True", "True"]


def test_definition_schemas_are_built_on_first_use() -> None:
    """`import orchestrator` builds no definition model's validator; the first definition does,
    with the field docstrings in its schema."""
    code = (
        "import orchestrator\n"
        "from state import AdvancedWorkflow, RetryPolicy, WorkflowStep\n"
        "models = (AdvancedWorkflow, WorkflowStep, RetryPolicy)\n"
        "print([m.__pydantic_complete__ for m in models])\n"
        "AdvancedWorkflow.from_dict({'name': 'w', 'steps': [{'step_id': 'a', 'action': 'x'}]})\n"
        "print(AdvancedWorkflow.__pydantic_complete__)\n"
        "print(AdvancedWorkflow.model_json_schema()['properties']['name']['description'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines() == [
        "[False, False, False]",
        "True",
        "Human-readable name.",
    ]
