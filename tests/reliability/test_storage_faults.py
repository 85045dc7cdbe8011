"""Storage faults: a full disk, a busy database, a damaged one. Clear errors, nothing corrupted,
and the run resumes once the fault is gone."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator._cli_errors import explain

FILL_ACTIONS = """\
from orchestrator import ActionRegistry

registry = ActionRegistry()


@registry.action("fill")
def fill():
    return {"blob": "x" * 60000}
"""


def _chain(steps: int) -> str:
    lines = ["name: fill", "actions: fill_actions", "steps:"]
    for i in range(steps):
        deps = f"[s{i - 1}]" if i else "[]"
        lines.append(f"  - {{step_id: s{i}, action: fill, dependencies: {deps}}}")
    return "\n".join(lines) + "\n"


def _cli(root: Path, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, "--db", db],
        cwd=root,
        env={**env, "LANGGRAPH_STRICT_MSGPACK": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs mounted for the test (skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {done.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_exits_3_and_the_run_resumes_after(tmp_path: Path, tiny_disk: Path) -> None:
    """A full disk mid-run exits 3 naming `resume`; once there is room, resume completes it."""
    (tmp_path / "fill_actions.py").write_text(FILL_ACTIONS)
    (tmp_path / "fill.yaml").write_text(_chain(40))
    db = f"sqlite:///{tiny_disk / 'runs.sqlite'}"
    full = _cli(tmp_path, db, "run", "fill.yaml", "--run-id", "F1")
    assert full.returncode == 3, full.stderr
    assert "disk is full" in full.stderr
    assert "orchestrator resume F1" in full.stderr
    assert "Traceback" not in full.stderr
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    status = _cli(tmp_path, db, "status", "F1", "--json")
    assert status.returncode == 3, status.stderr  # interrupted: resumable
    resumed = _cli(tmp_path, db, "resume", "F1", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert '"status": "completed"' in resumed.stdout
    verify = _cli(tmp_path, db, "audit", "F1", "--verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_briefly_locked_database_is_waited_for(tmp_path: Path) -> None:
    """A run whose database another process holds locked for a moment waits and completes."""
    (tmp_path / "fill_actions.py").write_text(FILL_ACTIONS)
    (tmp_path / "fill.yaml").write_text(_chain(3))
    path = tmp_path / "runs.sqlite"
    db = f"sqlite:///{path}"
    assert _cli(tmp_path, db, "run", "fill.yaml", "--run-id", "warm").returncode == 0
    locker = sqlite3.connect(path, timeout=30, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(2.0, locker.rollback)
    release.start()
    started = time.monotonic()
    try:
        done = _cli(tmp_path, db, "run", "fill.yaml", "--run-id", "L1")
    finally:
        release.join()
        locker.close()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 2.0


def test_busy_database_error_names_the_resume_command() -> None:
    """A database still locked after the wait is reported as resumable: exit 3 and `resume`."""
    message, code = explain(
        sqlite3.OperationalError("database is locked"), command="approve", run_id="R9"
    )
    assert code == 3
    assert "orchestrator resume R9" in message


def test_damaged_database_is_a_usage_error() -> None:
    """A damaged database file gets exit 2 and says to restore it or pass another."""
    message, code = explain(
        sqlite3.DatabaseError("file is not a database"), command="status", run_id="R9"
    )
    assert code == 2
    assert "restore it" in message


def test_corrupted_page_in_the_middle_is_reported_not_crashed(tmp_path: Path) -> None:
    """Garbage written over the middle of a run database gives one line, never a traceback."""
    (tmp_path / "fill_actions.py").write_text(FILL_ACTIONS)
    (tmp_path / "fill.yaml").write_text(_chain(5))
    path = tmp_path / "runs.sqlite"
    db = f"sqlite:///{path}"
    assert _cli(tmp_path, db, "run", "fill.yaml", "--run-id", "C1").returncode == 0
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8192] = os.urandom(8192)
    path.write_bytes(bytes(data))
    for name in ("runs.sqlite-wal", "runs.sqlite-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    proc = _cli(tmp_path, db, "status", "C1")
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, 2), proc.stderr  # a page of blobs may survive the damage
    if proc.returncode == 2:
        assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 1
