"""The audit ledger on both backends: one chain, append-only in the database, tamper found."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise

import pytest

from orchestrator import AuditLedger
from orchestrator.storage import open_db


@pytest.fixture
def ledger(any_db: str) -> Iterator[AuditLedger]:
    """A ledger on each backend, its tables created."""
    opened = AuditLedger.for_url(any_db)
    opened.setup()
    yield opened
    opened.close()


def _tamper(url: str, statement: str) -> None:
    """Run `statement` with the append-only triggers out of the way (as an attacker with
    owner rights would)."""
    db = open_db(url)
    try:
        if db.dialect == "postgres":
            db.execute("ALTER TABLE orchestrator_audit DISABLE TRIGGER USER")
        else:
            db.execute("DROP TRIGGER orchestrator_audit_no_update")
            db.execute("DROP TRIGGER orchestrator_audit_no_delete")
        db.execute(statement)
    finally:
        db.close()


def test_entries_chain_and_verify(ledger: AuditLedger) -> None:
    """Appended entries are numbered from 1, chained, and verify intact."""
    for n in range(5):
        ledger.append("r1", event="step_completed", step_id=f"s{n}", data={"n": n})
    entries = ledger.entries("r1")
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(entries))
    result = ledger.verify("r1", expected_head=entries[-1]["hash"])
    assert result.ok
    assert result.checked == 5


def test_the_database_refuses_update_and_delete(any_db: str, ledger: AuditLedger) -> None:
    """UPDATE and DELETE on the ledger table fail in the database itself."""
    ledger.append("r1", event="run_started", data={})
    db = open_db(any_db)
    try:
        with pytest.raises(Exception, match="append-only"):
            db.execute("UPDATE orchestrator_audit SET actor='mallory'")
        with pytest.raises(Exception, match="append-only"):
            db.execute("DELETE FROM orchestrator_audit")
        if db.dialect == "postgres":
            with pytest.raises(Exception, match="append-only"):
                db.execute("TRUNCATE orchestrator_audit")
    finally:
        db.close()
    assert len(ledger.entries("r1")) == 1


def test_an_altered_entry_is_named(any_db: str, ledger: AuditLedger) -> None:
    """Changing an entry's data behind the triggers' back is caught at that entry."""
    for n in range(3):
        ledger.append("r1", event="step_completed", step_id=f"s{n}", data={"n": n})
    _tamper(any_db, "UPDATE orchestrator_audit SET data='{\"n\": 99}' WHERE seq=2")
    fresh = AuditLedger.for_url(any_db)
    try:
        result = fresh.verify("r1")
    finally:
        fresh.close()
    assert not result.ok
    assert result.first_bad_seq == 2
    assert "altered" in result.reason


def test_a_removed_tail_is_caught_by_the_recorded_head(any_db: str, ledger: AuditLedger) -> None:
    """Deleting the last entry is caught when the run's recorded chain head is given."""
    for n in range(3):
        ledger.append("r1", event="step_completed", step_id=f"s{n}", data={"n": n})
    head = ledger.entries("r1")[-1]["hash"]
    _tamper(any_db, "DELETE FROM orchestrator_audit WHERE seq=3")
    fresh = AuditLedger.for_url(any_db)
    try:
        result = fresh.verify("r1", expected_head=head)
    finally:
        fresh.close()
    assert not result.ok
    assert "removed" in result.reason


APPENDER = """
import sys
from orchestrator import AuditLedger
ledger = AuditLedger.for_url(sys.argv[1])
for n in range(int(sys.argv[3])):
    ledger.append("shared", event="step_completed", step_id=sys.argv[2], data={"n": n})
ledger.close()
"""


def test_concurrent_appenders_in_processes_form_one_chain(any_db: str, ledger: AuditLedger) -> None:
    """Four processes appending 25 entries each to one run leave one intact 100-entry chain."""
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, any_db, f"p{i}", "25"]) for i in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    entries = ledger.entries("shared")
    assert [e["seq"] for e in entries] == list(range(1, 101))
    assert ledger.verify("shared").ok
    by_writer = {e["step_id"]: 0 for e in entries}
    for e in entries:
        by_writer[e["step_id"]] += 1
    assert by_writer == {"p0": 25, "p1": 25, "p2": 25, "p3": 25}
