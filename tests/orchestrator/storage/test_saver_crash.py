"""Our group-commit saver under SIGKILL: real processes die mid-run and new ones resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

SCENE = Path(__file__).with_name("saver_scene.py")


def _phase(tmp_path: Path, scene: str, phase: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCENE), str(tmp_path / "runs.sqlite"), str(tmp_path), scene, phase],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _killed_then_resumed(tmp_path: Path, scene: str) -> dict[str, Any]:
    first = _phase(tmp_path, scene, "first")
    assert first.returncode == -signal.SIGKILL, first.stderr
    resumed = _phase(tmp_path, scene, "resume")
    assert resumed.returncode == 0, resumed.stderr
    report: dict[str, Any] = json.loads(resumed.stdout)
    report["effects"] = (tmp_path / "effects.log").read_text(encoding="utf-8").split()
    return report


def test_killed_chain_resumes_without_rerunning_finished_steps(tmp_path: Path) -> None:
    """A chain killed in its third node resumes there: the first two nodes ran once."""
    report = _killed_then_resumed(tmp_path, "chain")
    assert report["effects"] == ["n1", "n2", "n3", "n4", "n5"]
    assert report["final"]["done"] == ["n1", "n2", "n3", "n4", "n5"]


def test_finished_sibling_of_a_failed_task_survives_a_kill(tmp_path: Path) -> None:
    """Killed as the error arrives, the run keeps the writes of the sibling that finished."""
    report = _killed_then_resumed(tmp_path, "sibling-fails")
    assert "done" in [channel for _, channel in report["pending_before_resume"]]
    assert report["effects"] == ["a", "b"]
    assert sorted(report["final"]["done"]) == ["a", "b"]


def test_finished_sibling_survives_a_kill_while_the_other_runs(tmp_path: Path) -> None:
    """Killed while one task still runs, the run keeps the writes of the one that finished."""
    report = _killed_then_resumed(tmp_path, "sibling-killed")
    assert "done" in [channel for _, channel in report["pending_before_resume"]]
    assert report["effects"] == ["a", "b"]
    assert sorted(report["final"]["done"]) == ["a", "b"]
