"""The audit ledger through the public contract: real runs on a real SQLite file.

Runs go through `EnterpriseWorkflowOrchestrator(hooks=[AuditHooks(ledger)])`, which keeps them
valid once the orchestrator installs its own `AuditHooks` (it then uses the one passed in).
Tampering is done the way an attacker with the file would: sqlite3, triggers dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeClock, saga_step
from hypothesis import given
from hypothesis import strategies as st

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator
from orchestrator._audit import GENESIS, AuditLedger, _plain
from orchestrator._audit_hooks import AuditHooks
from policies import redact
from state import AdvancedWorkflow, WorkflowStatus, unpack

Build = Callable[..., EnterpriseWorkflowOrchestrator]


@pytest.fixture
def db_path(db_url: str) -> Path:
    """The SQLite file of the test's runs (and of their audit ledger)."""
    return Path(db_url.removeprefix("sqlite:///"))


@pytest.fixture
def ledger(db_path: Path) -> Iterator[AuditLedger]:
    """The audit ledger in the runs' database file."""
    opened = AuditLedger.open(db_path)
    yield opened
    opened.close()


@pytest.fixture
def audited(make_orch: Build, ledger: AuditLedger) -> Build:
    """Builds orchestrators whose runs are audited in `ledger`."""

    def build(registry: ActionRegistry, config: dict[str, Any] | None = None, **kw: Any) -> Any:
        return make_orch(registry, config, hooks=[AuditHooks(ledger)], **kw)

    return build


def _registry(log: list[str] | None = None, *, fail: set[str] | None = None) -> ActionRegistry:
    registry = ActionRegistry()
    calls: dict[str, int] = {}
    failing = fail or set()

    @registry.action("do")
    async def do(name: str) -> dict[str, str]:
        calls[name] = calls.get(name, 0) + 1
        if log is not None:
            log.append(f"do {name}")
        if name in failing or (f"{name} once" in failing and calls[name] == 1):
            raise RuntimeError(f"{name} failed")
        return {"ref": f"R-{name}"}

    @registry.action("undo")
    async def undo(ref: str, step_id: str) -> None:
        if log is not None:
            log.append(f"undo {step_id}")

    return registry


_step = saga_step


def _workflow(*steps: dict[str, Any], **extra: Any) -> AdvancedWorkflow:
    base = {"name": "audited", "retry_policy": {"max_attempts": 1}, "steps": list(steps)}
    return AdvancedWorkflow.from_dict({**base, **extra})


def _chain() -> AdvancedWorkflow:
    return _workflow(_step("book"), _step("charge", ["book"]), _step("ship", ["charge"]))


def _events(ledger: AuditLedger, run_id: str) -> list[tuple[str, str | None]]:
    return [(e["event"], e["step_id"]) for e in ledger.entries(run_id)]


def _tamper(path: Path, *statements: str) -> None:
    """Change the ledger behind the orchestrator's back (the triggers only stop accidents)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER IF EXISTS orchestrator_audit_no_update")
    db.execute("DROP TRIGGER IF EXISTS orchestrator_audit_no_delete")
    for statement in statements:
        db.execute(statement)
    db.close()


async def _state(orch: EnterpriseWorkflowOrchestrator, run_id: str) -> dict[str, Any]:
    snapshot = await orch.graph.aget_state({"configurable": {"thread_id": run_id}})
    return unpack(snapshot.values)  # an unfinished run keeps its step fields packed


async def _completed_run(audited: Build, ledger: AuditLedger) -> str:
    run = await audited(_registry()).execute_workflow(_chain(), {})
    assert run.status is WorkflowStatus.COMPLETED
    ledger.flush()
    return str(run.run_id)


# -- the trail of a run ---------------------------------------------------------------------


async def test_completed_run_trail_lists_events_in_order(
    audited: Build, ledger: AuditLedger
) -> None:
    """A completed run's trail runs from run_started through each step to run_finished."""
    run_id = await _completed_run(audited, ledger)
    assert _events(ledger, run_id) == [
        ("run_started", None),
        ("step_started", "book"),
        ("step_completed", "book"),
        ("step_started", "charge"),
        ("step_completed", "charge"),
        ("step_started", "ship"),
        ("step_completed", "ship"),
        ("run_finished", None),
    ]


async def test_entries_are_numbered_and_chained(audited: Build, ledger: AuditLedger) -> None:
    """Entries are numbered from 1, each prev_hash is the previous hash, the first is zeros."""
    entries = ledger.entries(await _completed_run(audited, ledger))
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["prev_hash"] for e in entries] == [GENESIS] + [e["hash"] for e in entries[:-1]]


async def test_hash_is_sha256_of_canonical_entry(audited: Build, ledger: AuditLedger) -> None:
    """Each hash is SHA-256 over the canonical JSON of the entry's other fields."""
    for entry in ledger.entries(await _completed_run(audited, ledger)):
        body = {k: v for k, v in entry.items() if k != "hash"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert entry["hash"] == hashlib.sha256(text.encode()).hexdigest()


async def test_entries_carry_utc_time_actor_and_details(
    audited: Build, ledger: AuditLedger
) -> None:
    """An entry has a UTC ISO timestamp, an actor, and the step's attempts and duration."""
    entries = ledger.entries(await _completed_run(audited, ledger))
    done = next(e for e in entries if e["event"] == "step_completed")
    assert done["timestamp"].endswith("+00:00")
    assert done["actor"] == "system"
    assert done["data"]["attempts"] == 1
    assert done["data"]["duration_seconds"] >= 0
    assert entries[-1]["data"]["status"] == "completed"


async def test_state_holds_the_chain_head(audited: Build, ledger: AuditLedger) -> None:
    """The run's state keeps the hash of its latest entry as `audit_head`."""
    orch = audited(_registry())
    run = await orch.execute_workflow(_chain(), {})
    assert (await _state(orch, run.run_id))["audit_head"] == ledger.entries(run.run_id)[-1]["hash"]


async def test_trail_is_read_back_by_a_new_ledger(
    audited: Build, ledger: AuditLedger, db_path: Path
) -> None:
    """Another ledger on the same file (another process) reads the same trail and head."""
    run_id = await _completed_run(audited, ledger)
    other = AuditLedger.open(db_path)
    try:
        assert other.entries(run_id) == ledger.entries(run_id)
        assert other.head(run_id) == ledger.head(run_id)
    finally:
        other.close()


def test_appends_continue_the_stored_chain(db_path: Path) -> None:
    """A ledger opened later appends after the stored entries, on the same chain."""
    first = AuditLedger.open(db_path)
    first.append("r1", event="run_started")
    first.close()
    second = AuditLedger.open(db_path)
    entry = second.append("r1", event="run_finished")
    assert (entry["seq"], second.verify("r1").ok) == (2, True)
    second.close()


def test_jsonl_export_has_one_entry_per_line(ledger: AuditLedger) -> None:
    """export_jsonl writes each entry, with its hash, as one JSON line."""
    ledger.append("r1", event="run_started", data={"workflow_id": "w"})
    ledger.append("r1", event="run_finished", data={"status": "completed"})
    lines = ledger.export_jsonl("r1").splitlines()
    assert [json.loads(line) for line in lines] == ledger.entries("r1")


# -- verification ---------------------------------------------------------------------------


async def test_verify_reports_intact_trail(audited: Build, ledger: AuditLedger) -> None:
    """verify of an untouched trail is ok and counts every entry."""
    run_id = await _completed_run(audited, ledger)
    result = ledger.verify(run_id)
    assert (result.ok, result.checked, result.first_bad_seq) == (True, 8, None)


async def test_verify_names_altered_entry(
    audited: Build, ledger: AuditLedger, db_path: Path
) -> None:
    """Changing an entry's data is reported at that entry."""
    run_id = await _completed_run(audited, ledger)
    _tamper(
        db_path,
        "UPDATE orchestrator_audit SET data = '{\"attempts\":9}' "
        f"WHERE run_id = '{run_id}' AND seq = 3",
    )
    result = ledger.verify(run_id)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "altered" in result.reason


async def test_verify_names_deleted_entry(
    audited: Build, ledger: AuditLedger, db_path: Path
) -> None:
    """Deleting an entry is reported at the missing sequence number."""
    run_id = await _completed_run(audited, ledger)
    _tamper(db_path, f"DELETE FROM orchestrator_audit WHERE run_id = '{run_id}' AND seq = 4")
    result = ledger.verify(run_id)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "missing" in result.reason


async def test_verify_names_swapped_entries(
    audited: Build, ledger: AuditLedger, db_path: Path
) -> None:
    """Swapping two entries' sequence numbers is reported at the first of them."""
    run_id = await _completed_run(audited, ledger)
    where = f"WHERE run_id = '{run_id}' AND seq ="
    _tamper(
        db_path,
        f"UPDATE orchestrator_audit SET seq = -1 {where} 5",
        f"UPDATE orchestrator_audit SET seq = 5 {where} 6",
        f"UPDATE orchestrator_audit SET seq = 6 {where} -1",
    )
    result = ledger.verify(run_id)
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert "reordered" in result.reason


async def test_verify_against_state_head_detects_removed_last_entry(
    audited: Build, ledger: AuditLedger, db_path: Path
) -> None:
    """Removing the last entries is caught by the chain head the run's state recorded."""
    orch = audited(_registry())
    run = await orch.execute_workflow(_chain(), {})
    head = (await _state(orch, run.run_id))["audit_head"]
    ledger.flush()
    _tamper(db_path, f"DELETE FROM orchestrator_audit WHERE run_id = '{run.run_id}' AND seq = 8")
    assert ledger.verify(run.run_id).ok  # the chain alone cannot tell
    result = ledger.verify(run.run_id, expected_head=head)
    assert (result.ok, result.first_bad_seq) == (False, 8)


async def test_ledger_table_refuses_updates_and_deletes(
    audited: Build, ledger: AuditLedger, db_path: Path
) -> None:
    """The ledger table is append-only: UPDATE and DELETE are refused."""
    run_id = await _completed_run(audited, ledger)
    db = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE orchestrator_audit SET actor = 'x' WHERE run_id = ?", (run_id,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM orchestrator_audit WHERE run_id = ?", (run_id,))
    db.close()


def test_appends_from_two_processes_form_one_chain(db_path: Path) -> None:
    """Two processes appending to one run at once leave one gapless, valid chain."""
    AuditLedger.open(db_path).close()
    script = textwrap.dedent(
        f"""
        from orchestrator._audit import AuditLedger
        ledger = AuditLedger.open({str(db_path)!r})
        for i in range(40):
            ledger.append("shared", event="step_completed", data={{"i": i}})
        ledger.close()
        """
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    reader = AuditLedger.open(db_path)
    assert (reader.verify("shared").ok, reader.verify("shared").checked) == (True, 80)
    reader.close()


def test_append_does_not_wait_for_a_busy_database(ledger: AuditLedger, db_path: Path) -> None:
    """An append while another connection holds the write lock returns at once, is visible
    at once, and is stored when the lock is released."""
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    entry = ledger.append("r1", event="run_started")
    assert time.monotonic() - started < 1.0
    assert ledger.entries("r1") == [entry]
    blocker.execute("COMMIT")
    blocker.close()
    assert ledger.flush(timeout=30)
    reader = AuditLedger.open(db_path)
    assert reader.entries("r1") == [entry]
    reader.close()


# -- redaction ------------------------------------------------------------------------------


def test_secret_values_are_redacted_at_any_depth(ledger: AuditLedger) -> None:
    """Values under password, api_key, token... keys are redacted, nested ones included."""
    entry = ledger.append(
        "r1",
        event="step_completed",
        data={
            "user": "ann",
            "Password": "hunter2",
            "nested": {"API_KEY": "k-1", "items": [{"auth_token": "t-1", "n": 1}]},
        },
    )
    assert entry["data"] == {
        "user": "ann",
        "Password": "[REDACTED]",
        "nested": {"API_KEY": "[REDACTED]", "items": [{"auth_token": "[REDACTED]", "n": 1}]},
    }
    assert "hunter2" not in ledger.export_jsonl("r1")


def test_redacted_entries_verify(ledger: AuditLedger) -> None:
    """The hash covers the redacted data, so a redacted trail verifies."""
    ledger.append("r1", event="step_completed", data={"client_secret": "s"})
    assert ledger.verify("r1").ok


def test_non_json_data_is_stored_as_its_json_form(ledger: AuditLedger) -> None:
    """Data JSON cannot hold as it is (datetimes, tuples, int keys) is entered, hashed and read
    back as its JSON form, and the trail verifies from the database."""
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    entry = ledger.append(
        "r1", event="step_completed", data={"at": when, "pair": (1, 2), "by_n": {3: "x"}}
    )
    ledger.commit()
    expected = {"at": str(when), "pair": [1, 2], "by_n": {"3": "x"}}
    assert entry["data"] == expected
    reread = AuditLedger.open(ledger.path)
    try:
        assert reread.entries("r1")[0]["data"] == expected
        assert reread.verify("r1").ok
    finally:
        reread.close()


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.sampled_from(["a", "token", "password", "note"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["x", "api_key", "error", "n"]), _JSONISH, max_size=4))
def test_entry_data_is_what_json_reads_back_redacted(data: dict[str, Any]) -> None:
    """The data an entry holds is the redacted JSON round trip of what the hook passed."""
    assert _plain(data) == redact(json.loads(json.dumps(data)))


def test_plain_data_is_copied_and_redacted(ledger: AuditLedger) -> None:
    """JSON-ready data is entered as a redacted copy: tuples become lists, secrets inside
    strings are hidden, and the caller's dict is left as it was."""
    data: dict[str, Any] = {"ids": ("a", "b"), "error": "failed: password=hunter2", "n": 1.5}
    entry = ledger.append("r1", event="step_failed", data=data)
    assert entry["data"] == {"ids": ["a", "b"], "error": "failed: password=[REDACTED]", "n": 1.5}
    assert data["error"] == "failed: password=hunter2"
    assert ledger.verify("r1").ok


# -- approvals, retries, routing, compensation, circuits --------------------------------------


def _approval_workflow(approval: dict[str, Any]) -> AdvancedWorkflow:
    return _workflow(
        _step("prepare"),
        {
            "step_id": "gate",
            "step_type": "human_approval",
            "dependencies": ["prepare"],
            "input_mapping": {"amount": "input.amount", "api_key": "input.api_key"},
            "approval": approval,
        },
        _step("pay", ["gate"]),
    )


async def test_approval_request_and_decisions_name_the_actors(
    audited: Build, ledger: AuditLedger
) -> None:
    """A request is logged once by the system; each approval names its approver."""
    orch = audited(_registry())
    wf = _approval_workflow({"approvers": ["dana", "lee"], "min_approvals": 2})
    run = await orch.execute_workflow(wf, {"amount": 5, "api_key": "k"})
    await orch.approve(run.run_id, approver="dana", comment="ok")
    await orch.approve(run.run_id, approver="lee")
    approvals = [
        (e["event"], e["actor"]) for e in ledger.entries(run.run_id) if "approval" in e["event"]
    ]
    assert approvals == [
        ("approval_requested", "system"),
        ("approval_approved", "dana"),
        ("approval_approved", "lee"),
    ]


async def test_rejection_is_logged_with_approver_and_reason(
    audited: Build, ledger: AuditLedger
) -> None:
    """A rejection names the approver and carries the reason."""
    orch = audited(_registry())
    run = await orch.execute_workflow(_approval_workflow({"approvers": ["ann"]}), {"amount": 1})
    await orch.reject(run.run_id, approver="ann", reason="too risky")
    entry = next(e for e in ledger.entries(run.run_id) if e["event"] == "approval_rejected")
    assert (entry["actor"], entry["step_id"], entry["data"]["comment"]) == (
        "ann",
        "gate",
        "too risky",
    )


async def test_approval_summary_secrets_are_redacted(audited: Build, ledger: AuditLedger) -> None:
    """An approval request's summary is audited with secret-looking values redacted."""
    orch = audited(_registry())
    run = await orch.execute_workflow(
        _approval_workflow({"approvers": ["ann"]}), {"amount": 7, "api_key": "sk-live-1"}
    )
    request = next(e for e in ledger.entries(run.run_id) if e["event"] == "approval_requested")
    assert request["data"]["summary"] == {"amount": 7, "api_key": "[REDACTED]"}


async def test_approval_timeout_is_logged_for_the_sweeper(
    audited: Build, ledger: AuditLedger
) -> None:
    """An approval decided by the deadline sweep is logged as timed out by the sweeper."""
    clock = FakeClock()
    orch = audited(_registry(), clock=clock)
    wf = _approval_workflow({"approvers": ["ann"], "timeout_seconds": 60, "on_timeout": "reject"})
    run = await orch.execute_workflow(wf, {"amount": 1})
    clock.advance(61)
    await orch.sweep()
    entry = next(e for e in ledger.entries(run.run_id) if e["event"] == "approval_timed_out")
    assert (entry["actor"], entry["data"]["on_timeout"]) == ("system:sweep", "reject")


async def test_retry_is_logged_before_the_completion(audited: Build, ledger: AuditLedger) -> None:
    """A retried step logs step_retried with the error, then completes after 2 attempts."""
    orch = audited(_registry(fail={"book once"}))
    run = await orch.execute_workflow(
        _workflow(_step("book"), retry_policy={"max_attempts": 2, "jitter": 0}), {}
    )
    entries = [e for e in ledger.entries(run.run_id) if e["step_id"] == "book"]
    assert [e["event"] for e in entries] == ["step_started", "step_retried", "step_completed"]
    assert entries[1]["data"]["error"] == "RuntimeError: book failed"
    assert entries[2]["data"]["attempts"] == 2


async def test_route_decision_names_condition_and_skipped_branch(
    audited: Build, ledger: AuditLedger
) -> None:
    """A conditional logs the condition that matched and its targets; the other branch skips."""
    orch = audited(_registry())
    wf = _workflow(
        {
            "step_id": "size",
            "step_type": "conditional",
            "conditions": [{"if": "input.amount > 10", "then": ["big"]}, {"else": ["small"]}],
        },
        _step("big"),
        _step("small"),
    )
    run = await orch.execute_workflow(wf, {"amount": 50})
    entries = ledger.entries(run.run_id)
    route = next(e for e in entries if e["event"] == "route_decided")
    assert route["data"] == {"condition": "input.amount > 10", "targets": ["big"]}
    assert ("step_skipped", "small") in _events(ledger, run.run_id)


async def test_failure_and_compensations_are_logged(audited: Build, ledger: AuditLedger) -> None:
    """A failed step is logged with its error type, then each compensation, newest first."""
    orch = audited(_registry(fail={"ship"}))
    run = await orch.execute_workflow(_chain(), {})
    entries = ledger.entries(run.run_id)
    failed = next(e for e in entries if e["event"] == "step_failed")
    assert (failed["step_id"], failed["data"]["error_type"]) == ("ship", "RuntimeError")
    compensations = [
        (e["step_id"], e["data"]["action"], e["data"]["status"])
        for e in entries
        if e["event"] == "compensation"
    ]
    assert compensations == [("charge", "undo", "completed"), ("book", "undo", "completed")]
    assert entries[-1]["data"]["status"] == "failed"


async def test_circuit_opening_is_logged_in_the_run(audited: Build, ledger: AuditLedger) -> None:
    """An action's breaker opening is logged in the trail of the run whose call opened it."""
    orch = audited(_registry(fail={"book"}), {"failure_threshold": 1})
    run = await orch.execute_workflow(_workflow(_step("book")), {})
    entry = next(e for e in ledger.entries(run.run_id) if e["event"] == "circuit_opened")
    assert entry["data"] == {"circuit": "do", "old": "closed", "new": "open"}


async def test_sla_breach_hook_is_logged(ledger: AuditLedger) -> None:
    """on_sla_breach writes an sla_breached entry with the target and the actual time."""
    AuditHooks(ledger).on_sla_breach(
        workflow_id="w", run_id="r1", step_id="charge", target_seconds=2.0, actual_seconds=3.5
    )
    entry = ledger.entries("r1")[-1]
    assert (entry["event"], entry["step_id"]) == ("sla_breached", "charge")
    assert entry["data"] == {
        "scope": "step",
        "target_seconds": 2.0,
        "actual_seconds": 3.5,
        "enforced": False,
    }


# -- rollback -------------------------------------------------------------------------------


def _point_chain() -> AdvancedWorkflow:
    return _workflow(
        _step("book"),
        _step("charge", ["book"], rollback_point=True),
        _step("ship", ["charge"]),
        {
            "step_id": "gate",
            "step_type": "human_approval",
            "dependencies": ["ship"],
            "approval": {"approvers": ["ann"]},
        },
    )


async def test_rollback_keeps_undone_steps_and_adds_entries(
    audited: Build, ledger: AuditLedger
) -> None:
    """After a rollback the trail still has the undone steps, then compensations and rollback."""
    orch = audited(_registry())
    run = await orch.execute_workflow(_point_chain(), {})
    before = ledger.entries(run.run_id)
    await orch.rollback(run.run_id, to="charge")
    after = ledger.entries(run.run_id)
    assert after[: len(before)] == before
    assert ("step_completed", "ship") in _events(ledger, run.run_id)
    added = [(e["event"], e["step_id"]) for e in after[len(before) :]]
    assert [a for a in added if a[0] in ("compensation", "rollback")] == [
        ("compensation", "ship"),
        ("compensation", "charge"),
        ("rollback", "charge"),
    ]


async def test_rolled_back_state_head_still_verifies(audited: Build, ledger: AuditLedger) -> None:
    """The rewound state's older chain head is still in the trail, so verification passes."""
    orch = audited(_registry())
    run = await orch.execute_workflow(_point_chain(), {})
    await orch.rollback(run.run_id, to="charge")
    head = (await _state(orch, run.run_id))["audit_head"]
    assert ledger.verify(run.run_id, expected_head=head).ok


async def test_resumed_run_after_rollback_extends_the_same_chain(
    audited: Build, ledger: AuditLedger
) -> None:
    """Resuming after a rollback logs the re-run steps on the same, still valid chain."""
    orch = audited(_registry())
    run = await orch.execute_workflow(_point_chain(), {})
    await orch.rollback(run.run_id, to="charge")
    await orch.resume(run.run_id)
    events = _events(ledger, run.run_id)
    assert events.count(("step_completed", "charge")) == 2
    assert ledger.verify(run.run_id).ok


# -- needs the orchestrator's wiring (facade, state reducer, SLA checks in nodes, CLI) --------


async def test_every_orchestrator_audits_its_runs(make_orch: Build) -> None:
    """An orchestrator built without hooks still keeps an audit trail (compliance)."""
    orch = make_orch(_registry())
    run = await orch.execute_workflow(_chain(), {})
    trail = await orch.audit_trail(run.run_id)  # type: ignore[attr-defined]
    assert [e["event"] for e in trail][:2] == ["run_started", "step_started"]
    assert (await orch.verify_audit(run.run_id)).ok  # type: ignore[attr-defined]


async def test_parallel_steps_are_audited(audited: Build, ledger: AuditLedger) -> None:
    """Steps dispatched together each log their events and the run completes."""
    orch = audited(_registry())
    wf = _workflow(_step("left"), _step("right"), _step("join", ["left", "right"]))
    run = await orch.execute_workflow(wf, {})
    assert run.status is WorkflowStatus.COMPLETED
    assert {("step_completed", s) for s in ("left", "right", "join")} <= set(
        _events(ledger, run.run_id)
    )


def _slow_registry(clock: FakeClock, seconds: float) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action("slow")
    async def slow() -> dict[str, bool]:
        clock.advance(seconds)
        return {"ok": True}

    return registry


def _sla_workflow(**sla: Any) -> AdvancedWorkflow:
    return _workflow({"step_id": "work", "action": "slow"}, sla_targets=sla)


async def test_step_sla_breach_is_flagged_and_audited(audited: Build, ledger: AuditLedger) -> None:
    """A step over its SLA completes, flags sla_breached and logs the target and actual time."""
    clock = FakeClock()
    orch = audited(_slow_registry(clock, 5.0), clock=clock)
    run = await orch.execute_workflow(_sla_workflow(steps={"work": 2.0}), {})
    assert run.status is WorkflowStatus.COMPLETED
    assert "sla_breached" in run.compliance_flags
    entry = next(e for e in ledger.entries(run.run_id) if e["event"] == "sla_breached")
    assert (entry["step_id"], entry["data"]["target_seconds"]) == ("work", 2.0)
    assert entry["data"]["actual_seconds"] == 5.0


async def test_enforced_step_sla_fails_the_run(audited: Build) -> None:
    """With enforce: true a step over its SLA fails the run with SlaBreachError."""
    clock = FakeClock()
    orch = audited(_slow_registry(clock, 5.0), clock=clock)
    run = await orch.execute_workflow(_sla_workflow(steps={"work": 2.0}, enforce=True), {})
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "SlaBreachError"


async def test_run_sla_breach_is_flagged_and_audited(audited: Build, ledger: AuditLedger) -> None:
    """A run longer than max_duration_seconds completes, flagged, with a run-level entry."""
    clock = FakeClock()
    orch = audited(_slow_registry(clock, 5.0), clock=clock)
    run = await orch.execute_workflow(_sla_workflow(max_duration_seconds=1.0), {})
    assert run.status is WorkflowStatus.COMPLETED
    assert "sla_breached" in run.compliance_flags
    entry = next(e for e in ledger.entries(run.run_id) if e["event"] == "sla_breached")
    assert (entry["step_id"], entry["data"]["scope"]) == (None, "run")


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_DB"}
    env["LANGGRAPH_STRICT_MSGPACK"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "audit", *args, "--db", f"sqlite:///{db}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_verify_exits_0_when_intact(
    audited: Build, ledger: AuditLedger, db_path: Path
) -> None:
    """`audit RUN_ID --verify` exits 0 and says the trail is intact."""
    run_id = await _completed_run(audited, ledger)
    done = _cli(db_path, run_id, "--verify")
    assert (done.returncode, done.stdout.strip()) == (0, "audit trail intact: 8 entries")


async def test_cli_verify_exits_1_naming_tampered_entry(
    audited: Build, ledger: AuditLedger, db_path: Path
) -> None:
    """`audit RUN_ID --verify` exits 1 and names the first bad entry after tampering."""
    run_id = await _completed_run(audited, ledger)
    _tamper(db_path, f"DELETE FROM orchestrator_audit WHERE run_id = '{run_id}' AND seq = 2")
    done = _cli(db_path, run_id, "--verify")
    assert done.returncode == 1
    assert "entry 2" in done.stdout


async def test_cli_prints_trail_as_jsonl(
    audited: Build, ledger: AuditLedger, db_path: Path
) -> None:
    """`audit RUN_ID --format jsonl` prints one JSON entry per line."""
    run_id = await _completed_run(audited, ledger)
    done = _cli(db_path, run_id, "--format", "jsonl")
    assert [json.loads(line) for line in done.stdout.splitlines()] == ledger.entries(run_id)


async def test_cli_table_shows_events(audited: Build, ledger: AuditLedger, db_path: Path) -> None:
    """`audit RUN_ID` prints a readable table with one row per entry."""
    run_id = await _completed_run(audited, ledger)
    done = _cli(db_path, run_id)
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == f"audit trail of run {run_id}: 8 entries"
    assert "run_finished" in done.stdout.splitlines()[-1]


async def test_cli_unknown_run_exits_2(audited: Build, ledger: AuditLedger, db_path: Path) -> None:
    """`audit` of a run the database does not have exits 2 and names the run."""
    await _completed_run(audited, ledger)
    done = _cli(db_path, "nope", "--verify")
    assert done.returncode == 2
    assert "no run 'nope'" in done.stderr


def test_cli_missing_database_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    """`audit` against a database file that does not exist exits 2 without creating it."""
    missing = tmp_path / "missing.sqlite"
    done = _cli(missing, "r1")
    assert (done.returncode, "no run 'r1'" in done.stderr) == (2, True)
    assert not missing.exists()
