"""Pictures of a workflow (PNG, SVG) drawn offline: with mermaid-cli when `mmdc` is on PATH,
else with matplotlib; `draw_workflow` returns a matplotlib figure for notebooks."""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from state import AdvancedWorkflow, RendererNotFoundError, StepType
from state._diagram import STATUS_COLOURS, workflow_mermaid

INSTALL_HINT = (
    "install a renderer: `pip install matplotlib` (or the project's `[plot]` extra), or "
    "mermaid-cli (`npm install -g @mermaid-js/mermaid-cli`, which puts `mmdc` on PATH); "
    "`orchestrator graph WORKFLOW` without --format prints Mermaid text, which needs nothing"
)
_TYPE_COLOUR = "#e3f2fd"


def _edges(workflow: AdvancedWorkflow) -> list[tuple[str, str, str]]:
    """`(from, to, label)` between top-level steps; label `""` for a dependency."""
    edges: list[tuple[str, str, str]] = []
    for step in workflow.steps:
        edges.extend((dep, step.step_id, "") for dep in step.dependencies)
        edges.extend((step.step_id, nxt, "") for nxt in step.next_steps)
        for rule in step.conditions:
            text = rule.if_ or "else"
            label = text if len(text) <= 28 else text[:25] + "..."
            edges.extend((step.step_id, t, label) for t in rule.targets)
        edges.extend((step.step_id, h, "on failure") for h in step.error_handlers)
    top = {s.step_id for s in workflow.steps}
    return [e for e in dict.fromkeys(edges) if e[0] in top and e[1] in top]


def _layers(workflow: AdvancedWorkflow, edges: list[tuple[str, str, str]]) -> dict[str, int]:
    """Longest path from a root, so every arrow points down (handlers may point up)."""
    layer: dict[str, int] = {s.step_id: 0 for s in workflow.steps}
    forward = [(a, b) for a, b, label in edges if label != "on failure"]
    for _ in range(len(layer)):
        changed = False
        for a, b in forward:
            if layer[b] < layer[a] + 1:
                layer[b], changed = layer[a] + 1, True
        if not changed:
            break
    return layer


@functools.cache
def _figure_class() -> Any:
    from matplotlib.figure import Figure

    class WorkflowFigure(Figure):
        """A matplotlib figure that Jupyter shows as a PNG without any `%matplotlib` setup."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=90)
            return buffer.getvalue()

    return WorkflowFigure


def draw_workflow(
    workflow: AdvancedWorkflow,
    statuses: Mapping[str, str] | None = None,
    *,
    title: str | None = None,
) -> Any:
    """A matplotlib `Figure` of the workflow's steps, filled by status when `statuses` is given
    (`{step_id: "completed" | "failed" | "skipped" | "waiting"}`, e.g. `RunResult.statuses`).

    Raises `RendererNotFoundError` when matplotlib is not installed.
    """
    try:
        from matplotlib.patches import FancyBboxPatch, Patch
    except ImportError:
        raise RendererNotFoundError(f"drawing needs matplotlib; {INSTALL_HINT}") from None
    Figure = _figure_class()  # noqa: N806 -- a class, named as one
    edges = _edges(workflow)
    layer = _layers(workflow, edges)
    rows: dict[int, list[str]] = {}
    for step in workflow.steps:
        rows.setdefault(layer[step.step_id], []).append(step.step_id)
    width = max(len(r) for r in rows.values())
    span = 2.2 * width  # a column is 2.2 wide, a box 1.8
    pos = {
        sid: ((i + 0.5) * span / len(ids), -row)
        for row, ids in rows.items()
        for i, sid in enumerate(ids)
    }
    fig = Figure(figsize=(max(4.0, 2.6 * width), max(2.5, 1.25 * len(rows) + 0.8)))
    ax = fig.add_subplot()
    ax.set_axis_off()
    for a, b, label in edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        ax.annotate(
            "",
            xy=(x2, y2 + 0.22 if y2 < y1 else y2 - 0.22),
            xytext=(x1, y1 - 0.22 if y2 < y1 else y1 + 0.22),
            arrowprops={
                "arrowstyle": "->",
                "color": "#555",
                "linestyle": "--" if label == "on failure" else "-",
                "connectionstyle": "arc3,rad=0.0" if y2 < y1 else "arc3,rad=0.4",
            },
        )
        if label:
            ax.text((x1 + x2) / 2, (y1 + y2) / 2, label, fontsize=7, color="#444", ha="center")
    for step in workflow.steps:
        x, y = pos[step.step_id]
        status = (statuses or {}).get(step.step_id)
        colour = STATUS_COLOURS.get(status or "", _TYPE_COLOUR) if statuses else _TYPE_COLOUR
        ax.add_patch(
            FancyBboxPatch(
                (x - 0.9, y - 0.22),
                1.8,
                0.44,
                boxstyle="round,pad=0.02",
                facecolor=colour,
                edgecolor="#333",
            )
        )
        kind = step.step_type.value
        if step.children:
            names = ", ".join(c.step_id for c in step.children)
            kind += ": " + textwrap.shorten(names, 26, placeholder="...")
        elif step.step_type is StepType.HUMAN_APPROVAL and step.approval is not None:
            kind += f" ({step.approval.min_approvals} of {len(step.approval.approvers)})"
        ax.text(x, y + 0.05, step.display_name, ha="center", va="center", fontsize=9)
        ax.text(x, y - 0.12, kind, ha="center", va="center", fontsize=7, color="#555")
    ax.set_xlim(-0.1, span + 0.1)
    ax.set_ylim(-max(rows) - 0.6, 0.6)
    if statuses:
        shown = sorted({s for s in statuses.values() if s in STATUS_COLOURS})
        handles = [Patch(facecolor=STATUS_COLOURS[s], edgecolor="#333", label=s) for s in shown]
        ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False)
    ax.set_title(title or f"{workflow.name} ({workflow.workflow_id} v{workflow.version})")
    fig.tight_layout()
    return fig


def render_workflow(
    workflow: AdvancedWorkflow, fmt: str, statuses: Mapping[str, str] | None = None
) -> bytes:
    """The workflow as `png` or `svg` bytes, drawn offline by `mmdc` or else matplotlib.

    Raises `RendererNotFoundError` saying what to install when neither is available.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"cannot render format {fmt!r}; use png or svg")
    mmdc = shutil.which("mmdc")
    if mmdc is not None:
        with tempfile.TemporaryDirectory() as tmp:
            source, target = Path(tmp, "graph.mmd"), Path(tmp, f"graph.{fmt}")
            source.write_text(workflow_mermaid(workflow, statuses), encoding="utf-8")
            done = subprocess.run(  # noqa: S603 -- mmdc found on PATH, arguments are ours
                [mmdc, "-i", str(source), "-o", str(target)],
                capture_output=True,
                check=False,
                timeout=120,
            )
            if done.returncode == 0 and target.exists():
                return target.read_bytes()
    buffer = io.BytesIO()
    figure = draw_workflow(workflow, statuses)
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()
