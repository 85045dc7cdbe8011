"""The run store on both backends: migrations, leases, queued requests, claims, run rows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from orchestrator.storage import LATEST, RunStore, current_version, open_db
from orchestrator.storage._leases import HOST


class Clock:
    """A settable wall clock for lease expiry."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A clock that moves only when told to."""
    return Clock()


@pytest.fixture
def store(any_db: str, clock: Clock) -> Iterator[RunStore]:
    """A migrated store on each backend."""
    opened = RunStore.open(any_db, clock=clock)
    yield opened
    opened.close()


def test_migrations_apply_once_and_are_idempotent(any_db: str) -> None:
    """Opening migrates to the latest version; upgrading again applies nothing."""
    first = RunStore.open(any_db)
    try:
        assert current_version(first.db) == LATEST
        assert first.upgrade() == []
    finally:
        first.close()
    second = RunStore.open(any_db)
    try:
        assert second.upgrade() == []
        rows = second.db.query("SELECT version FROM orchestrator_schema ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, LATEST + 1))
    finally:
        second.close()


def test_concurrent_upgrades_from_processes_apply_each_version_once(any_db: str) -> None:
    """Four processes upgrading a fresh database at once leave one row per version."""
    code = (
        "import sys; from orchestrator.storage import RunStore; RunStore.open(sys.argv[1]).close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, any_db]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    db = open_db(any_db)
    try:
        rows = db.query("SELECT version FROM orchestrator_schema ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, LATEST + 1))
    finally:
        db.close()


def test_a_lease_has_one_holder_until_released(store: RunStore) -> None:
    """A second acquire fails while the first holds the lease, and succeeds after release."""
    lease = store.leases.acquire("r1", ttl=30)
    assert lease is not None
    assert store.leases.acquire("r1", ttl=30) is None
    assert store.leases.live("r1") == lease
    store.leases.release(lease)
    assert store.leases.live("r1") is None
    again = store.leases.acquire("r1", ttl=30)
    assert again is not None
    assert again.holder != lease.holder


def test_an_expired_lease_is_taken_over_and_the_old_holder_loses_it(
    store: RunStore, clock: Clock
) -> None:
    """After its expiry a silent holder's lease goes to the next taker; its renewal fails."""
    old = store.leases.acquire("r1", ttl=10)
    assert old is not None
    clock.now += 9
    assert store.leases.acquire("r1", ttl=10) is None
    assert store.leases.renew(old, ttl=10)  # renewed at 1009: now lives until 1019
    clock.now += 10.5
    new = store.leases.acquire("r1", ttl=10)
    assert new is not None
    assert new.takeovers == 1
    assert not store.leases.renew(old, ttl=10)
    store.leases.release(old)  # a late release by the old holder does not free the new lease
    assert store.leases.live("r1") == new


def test_a_dead_local_holder_loses_its_lease_at_once(store: RunStore) -> None:
    """A lease held by a process of this host that died is free before it expires."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    store.db.execute(
        "INSERT INTO orchestrator_leases (run_id, holder, host, pid, acquired_at, heartbeat_at,"
        " expires_at, takeovers) VALUES (?,?,?,?,?,?,?,0)",
        ("r1", "x", HOST, dead.pid, 1000.0, 1000.0, 10_000.0),
    )
    assert store.leases.live("r1") is None
    taken = store.leases.acquire("r1", ttl=30)
    assert taken is not None
    assert taken.pid == os.getpid()
    assert taken.takeovers == 1


def test_a_lease_on_another_host_binds_until_it_expires(store: RunStore, clock: Clock) -> None:
    """A holder on another host is never judged by local pids: only its expiry frees it."""
    store.db.execute(
        "INSERT INTO orchestrator_leases (run_id, holder, host, pid, acquired_at, heartbeat_at,"
        " expires_at, takeovers) VALUES (?,?,?,?,?,?,?,0)",
        ("r1", "x", "elsewhere.example", 999_999, 1000.0, 1000.0, 1030.0),
    )
    assert store.leases.acquire("r1", ttl=30) is None
    clock.now = 1031.0
    assert store.leases.acquire("r1", ttl=30) is not None


def test_only_one_of_many_concurrent_acquirers_gets_the_lease(any_db: str) -> None:
    """Eight processes acquiring one lease at the same moment: exactly one succeeds."""
    RunStore.open(any_db).close()
    code = (
        "import sys, time, os\n"
        "from orchestrator.storage import RunStore\n"
        "s = RunStore.open(sys.argv[1])\n"
        "while not os.path.exists(sys.argv[2]): time.sleep(0.005)\n"
        "print('got' if s.leases.acquire('race', ttl=60) else 'busy')\n"
    )
    go = f"/tmp/orch-go-{os.getpid()}-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, any_db, go], stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    time.sleep(2.0)
    open(go, "w").close()
    try:
        outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    finally:
        os.unlink(go)
    assert sorted(outputs) == ["busy"] * 7 + ["got"]


def test_requests_queue_and_the_strongest_wins(store: RunStore) -> None:
    """A pause then a cancel leave the cancel waiting; finishing pauses keeps the cancel."""
    store.request("r1", "pause", now=1.0)
    assert store.pending_request("r1") == "pause"
    store.request("r1", "cancel", now=2.0)
    store.request("r1", "pause", now=3.0)
    assert store.pending_request("r1") == "cancel"
    assert store.finish_requests("r1", ("pause",)) == 2
    assert store.pending_request("r1") == "cancel"
    store.clear_request("r1")
    assert store.pending_request("r1") is None


def test_unknown_request_is_refused(store: RunStore) -> None:
    """Only pause, cancel and cancel_compensate can be queued."""
    with pytest.raises(ValueError, match="unknown lifecycle request"):
        store.request("r1", "explode", now=1.0)


def test_a_claim_is_granted_once(store: RunStore) -> None:
    """The first claim of a key wins; later ones are refused."""
    assert store.claim("k", now=1.0)
    assert not store.claim("k", now=2.0)


def test_runs_are_recorded_filtered_and_name_their_holder(store: RunStore) -> None:
    """Recorded runs list newest first, filter by status and workflow, and show the holder."""
    store.record("a", {"workflow_id": "w1", "status": "completed", "started_at": "2026-01-01"}, 1)
    store.record("b", {"workflow_id": "w2", "status": "running", "started_at": "2026-01-02"}, 2)
    lease = store.leases.acquire("b", ttl=30)
    assert lease is not None
    rows = store.runs()
    assert [r["run_id"] for r in rows] == ["b", "a"]
    assert rows[0]["holder"] == f"process {os.getpid()} on {HOST}"
    assert rows[1]["holder"] is None
    assert [r["run_id"] for r in store.runs(status="completed")] == ["a"]
    assert [r["run_id"] for r in store.runs(workflow_id="w2")] == ["b"]
