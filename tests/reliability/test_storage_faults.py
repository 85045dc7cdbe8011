"""Storage faults: a full disk, a busy database, a damaged one. Clear errors, nothing corrupted,
and the run resumes once the fault is gone."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


def _cli(
    root: Path, db: str, *args: str, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, "--db", db],
        cwd=root,
        env={**env, "LANGGRAPH_STRICT_MSGPACK": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=preexec,  # sets a resource limit in the child only
    )


@dataclass
class SmallDisk:
    """Where a run database fills up after about 1 MB, and how to make room."""

    root: Path
    """Directory for the database."""
    preexec: Callable[[], None] | None
    """Run in each CLI child before it starts (None: the directory itself is small)."""
    grow: Callable[[], None]
    """Make room: after it, the CLI writes freely."""
    says: str
    """What the CLI's one line says of the fault."""


def _file_size_limit() -> None:
    """In the child: files may not grow past ~1 MB (writes past it fail as on a full disk)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a short write / EFBIG, not a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_123, resource.RLIM_INFINITY))


@pytest.fixture(params=["tmpfs", "file-size-limit"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmallDisk]:
    """A 1 MB tmpfs mounted for the test, or a 1 MB file-size limit on the CLI processes.

    Mounting needs root or CAP_SYS_ADMIN; where it is refused, the tmpfs case uses the
    file-size limit too, so the full-disk test runs everywhere.
    """
    disk = tmp_path / "disk"
    disk.mkdir()
    if request.param == "tmpfs":
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:

            def grow() -> None:
                subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)

            try:
                yield SmallDisk(disk, None, grow, "the disk is full")
            finally:
                subprocess.run(["umount", "-l", str(disk)], check=False)
            return
    # SQLite reports a write past the limit as "disk I/O error" (EFBIG), not as full
    limited = SmallDisk(disk, _file_size_limit, lambda: None, "the disk refused a write")
    yield limited


def test_full_disk_exits_3_and_the_run_resumes_after(tmp_path: Path, small_disk: SmallDisk) -> None:
    """A full disk (or one refusing writes) mid-run exits 3 naming `resume`; once there is
    room, resume completes the run and its audit chain verifies."""
    (tmp_path / "fill_actions.py").write_text(FILL_ACTIONS)
    (tmp_path / "fill.yaml").write_text(_chain(40))
    db = f"sqlite:///{small_disk.root / 'runs.sqlite'}"
    full = _cli(tmp_path, db, "run", "fill.yaml", "--run-id", "F1", preexec=small_disk.preexec)
    assert full.returncode == 3, full.stderr
    assert small_disk.says in full.stderr
    assert "orchestrator resume F1" in full.stderr
    assert "Traceback" not in full.stderr
    small_disk.grow()  # from here on the CLI runs without the limit
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
