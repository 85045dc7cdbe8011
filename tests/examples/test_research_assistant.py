"""The research-assistant example runs through the CLI with its scripted models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=ROOT,
        env={**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_research_assistant_plans_researches_and_writes_a_brief(tmp_path: Path) -> None:
    """Planner, three researcher workers, the reduce and the editor produce the brief."""
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    run = _cli(
        "run",
        "examples/research_assistant/workflow.yaml",
        "--input",
        '{"topic": "Heat pumps"}',
        "--json",
        "--db",
        db,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["status"] == "completed"
    assert out["result"]["sources"] == [
        "Heat pumps: cost",
        "Heat pumps: efficiency",
        "Heat pumps: climate",
    ]
    assert "COP 3-4" in out["result"]["brief"]
    assert out["result"]["final_brief"].startswith("Heat pumps in brief (")
    trail = _cli("audit", out["run_id"], "--format", "jsonl", "--db", db)
    events = [json.loads(line) for line in trail.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert "plan_recorded" in kinds
    assert "agent_finished" in kinds
    workers = {e["step_id"] for e in events if e["event"] == "step_completed"}
    assert {"research#0", "research#1", "research#2"} <= workers


def test_research_assistant_names_the_provider_package_to_install(tmp_path: Path) -> None:
    """With a provider string and no provider package, the run says what to install."""
    source = (ROOT / "examples/research_assistant/actions.py").read_text(encoding="utf-8")
    package = tmp_path / "real_provider"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "actions.py").write_text(
        source.replace('MODEL = "scripted"', 'MODEL = "openai:gpt-4o-mini"', 1)
    )
    definition = (ROOT / "examples/research_assistant/workflow.yaml").read_text()
    (tmp_path / "wf.yaml").write_text(
        definition.replace("examples.research_assistant.actions", "real_provider.actions")
    )
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "wf.yaml", "--db", "memory"],
        cwd=tmp_path,
        env={**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "pip install langchain-openai" in done.stderr
