"""The checkpointer factory as a user meets it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio
    from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
    from state import AdvancedWorkflow, WorkflowStep

    registry = ActionRegistry()

    @registry.action("noop")
    async def noop() -> dict:
        return {}

    async def main() -> None:
        wf = AdvancedWorkflow(name="w", steps=[WorkflowStep(step_id="a", action="noop")])
        orch = EnterpriseWorkflowOrchestrator(registry=registry, checkpointer=DB)
        print((await orch.execute_workflow(wf, {})).status.value)  # never closed on purpose

    asyncio.run(main())
    """
)


def test_unclosed_orchestrator_does_not_hang_exit(tmp_path: Path) -> None:
    """A script that forgets `aclose()` still exits (database threads do not block exit)."""
    script = tmp_path / "script.py"
    script.write_text(f"DB = 'sqlite:///{tmp_path / 'r.sqlite'}'\n" + SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "completed"
