"""Crash matrix: SIGKILL at every step boundary and mid-step, then resume in a new process.

`crash_driver.py` runs the scenarios in real processes (one per kill, one per resume) and
reports what each left; these tests compare every scenario with an uninterrupted run:
every run ends as the uninterrupted one does, no finished step runs again, the step in
flight runs again with the same idempotency key, and the audit chain verifies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

DRIVER = Path(__file__).parent / "crash_driver.py"
sys.path.insert(0, str(DRIVER.parent))

from crash_driver import FAILING_POINTS, POINTS  # noqa: E402

UNITS = {"c1": {"c1", "c2"}, "c2": {"c1", "c2"}}
"""Steps that re-run together: the children of one parallel container (one task)."""


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every scenario's report, by name (one driver process runs them all)."""
    root = tmp_path_factory.mktemp("crash-matrix")
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true", "PYTHONPATH": str(Path.cwd())}
    env.pop("CRASH_AT", None)
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(root)],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return {report["name"]: report for report in reports}


def _effects(report: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter(tuple(line.split(" ", 1)) for line in report["effects"])  # type: ignore[misc]


CASES = [(f"pass-{p}", p, "reference") for p in POINTS]
CASES += [(f"fail-{p}", p, "reference-failing") for p in FAILING_POINTS]


def test_matrix_counts(matrix: dict[str, dict[str, Any]]) -> None:
    """Every planned scenario ran and was killed (the figures README reports)."""
    tried = [name for name, _, _ in CASES]
    killed = [name for name in tried if matrix[name]["killed"]]
    completed = [
        name
        for name in tried
        if matrix[name]["final"]["status"] == matrix[CASES[tried.index(name)][2]]["final"]["status"]
    ]
    print(f"\ncrash matrix: {len(tried)} runs tried, {len(killed)} killed, {len(completed)} ended")
    assert len(killed) == len(completed) == len(tried) == len(POINTS) + len(FAILING_POINTS)


@pytest.mark.parametrize(("name", "point", "reference"), CASES, ids=[c[0] for c in CASES])
def test_killed_run_resumes_to_the_same_end(
    matrix: dict[str, dict[str, Any]], name: str, point: str, reference: str
) -> None:
    """The killed run ends as the uninterrupted one did, with an intact audit chain."""
    report, ref = matrix[name], matrix[reference]
    assert report["killed"], f"{point} was never reached"
    assert report["final"]["status"] == ref["final"]["status"], report["final"]
    assert report["final"]["audit_ok"], report["final"]["audit"]


@pytest.mark.parametrize(("name", "point", "reference"), CASES, ids=[c[0] for c in CASES])
def test_only_the_step_in_flight_runs_again(
    matrix: dict[str, dict[str, Any]], name: str, point: str, reference: str
) -> None:
    """Finished steps run once; the killed step re-runs at most once, with the same key."""
    crashed, clean = _effects(matrix[name]), _effects(matrix[reference])
    step, phase, _ = point.split(":")
    unit = UNITS.get(step, {step})
    assert set(crashed) == set(clean)  # no new idempotency keys: re-runs reuse them
    for (effect, key), times in crashed.items():
        expected = clean[(effect, key)]
        if effect in unit:
            assert expected <= times <= expected + 1, (effect, key, times)
        else:
            assert times == expected, f"{effect} ran {times}x after a kill in {point}"
    if phase == "mid":  # the effect happened, the step did not finish: it ran again
        assert any(
            times == clean[(effect, key)] + 1
            for (effect, key), times in crashed.items()
            if effect == step
        )
