"""Pictures of workflows and runs: Mermaid text, Jupyter display, PNG/SVG drawn offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import ActionRegistry, draw_workflow, render_workflow, workflow_mermaid
from state import AdvancedWorkflow, WorkflowStatus

ROOT = Path(__file__).resolve().parents[2]
TRIAGE = ROOT / "examples" / "support_triage" / "workflow.yaml"


def _workflow() -> AdvancedWorkflow:
    return AdvancedWorkflow.from_dict(
        {
            "name": "Pictured",
            "workflow_id": "pictured",
            "steps": [
                {"step_id": "a", "action": "ok"},
                {
                    "step_id": "route",
                    "step_type": "conditional",
                    "dependencies": ["a"],
                    "conditions": [{"if": "context.big", "then": ["b"]}, {"else": ["c"]}],
                },
                {"step_id": "b", "action": "ok"},
                {"step_id": "c", "action": "ok"},
                {
                    "step_id": "sign",
                    "step_type": "human_approval",
                    "dependencies": ["b", "c"],
                    "approval": {"approvers": ["ann", "ben"]},
                },
            ],
        }
    )


def _registry() -> ActionRegistry:
    registry = ActionRegistry()
    registry.register("ok", lambda: {"ok": True})
    return registry


def test_workflow_mermaid_colours_steps_by_status() -> None:
    """With statuses, each step gets the class of its status and the classes are defined."""
    text = workflow_mermaid(_workflow(), {"a": "completed", "b": "skipped", "c": "completed"})
    assert text.startswith("flowchart TD")
    assert "classDef completed fill:#c8e6c9" in text
    assert "class s_a,s_c completed" in text
    assert "class s_b skipped" in text
    assert "classDef" not in workflow_mermaid(_workflow())


def test_a_workflow_displays_as_its_diagram_in_jupyter() -> None:
    """`AdvancedWorkflow._repr_markdown_` is a summary and a Mermaid block of its steps."""
    markdown = _workflow()._repr_markdown_()
    assert markdown.startswith("**Pictured** (`pictured` v1.0, 5 steps)")
    assert "```mermaid\nflowchart TD" in markdown
    assert 's_route{"route' in markdown


async def test_a_run_displays_as_a_table_and_a_coloured_diagram(make_orch: Any) -> None:
    """A waiting run shows each step's status, who may approve, and a diagram by status."""
    orch = make_orch(_registry())
    run = await orch.execute_workflow(_workflow(), {"big": True})
    assert run.status is WorkflowStatus.WAITING_APPROVAL
    assert run.statuses == {
        "a": "completed",
        "route": "completed",
        "c": "skipped",
        "b": "completed",
        "sign": "waiting",
    }
    markdown = run._repr_markdown_()
    assert "| c | skipped |" in markdown
    assert "0 of 1 approvals, waiting for one of: ann, ben" in markdown
    assert "class s_sign waiting" in markdown


def test_draw_workflow_returns_a_matplotlib_figure() -> None:
    """`draw_workflow` draws a box per top-level step, with a legend of statuses."""
    figure = draw_workflow(_workflow(), {"a": "completed", "b": "failed"})
    texts = {t.get_text() for t in figure.axes[0].texts}
    assert {"a", "route", "b", "c", "sign"} <= texts
    legend = figure.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["completed", "failed"]


@pytest.mark.parametrize(("fmt", "magic"), [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_graph_format_writes_a_picture(tmp_path: Path, fmt: str, magic: bytes) -> None:
    """`orchestrator graph WORKFLOW --format png|svg` writes the picture offline."""
    out = tmp_path / f"triage.{fmt}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "graph",
            str(TRIAGE),
            "--format",
            fmt,
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(magic)
    assert render_workflow(_workflow(), fmt).startswith(magic)


def test_graph_format_without_a_renderer_says_what_to_install(tmp_path: Path) -> None:
    """Without matplotlib or mmdc, `graph --format png` exits 2 naming both ways to get one."""
    # sys.modules[name] = None is how Python spells "this package is not installed"
    code = (
        "import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.figure'] = None\n"
        "from orchestrator._cli import main\n"
        f"raise SystemExit(main(['graph', {str(TRIAGE)!r}, '--format', 'png']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PATH": str(tmp_path)},
    )
    assert proc.returncode == 2, proc.stderr
    assert "pip install matplotlib" in proc.stderr
    assert "mmdc" in proc.stderr
    assert not list(tmp_path.iterdir())
