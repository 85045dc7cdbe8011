"""The audit ledger: an append-only, hash-chained trail of what happened in each run.

Each entry holds `run_id, seq, timestamp, actor, event, step_id, data, prev_hash` and `hash`,
the SHA-256 hex digest of the canonical JSON (sorted keys, compact separators) of the other
fields; the first entry of a run has `prev_hash` = 64 zeros. Changing, removing or reordering
an entry breaks the chain, and `verify` names the first entry that does not fit.

The ledger is a table, `orchestrator_audit`, in the checkpointer's database (SQLite or
Postgres; `orchestrator.storage` stores it), outside the
run's state: checkpoints only carry the chain head (`audit_head`), so they do not grow with
the trail, and a rollback (time travel) cannot rewind it; it adds entries.

Hooks run on the event loop while the checkpointer may hold SQLite's write lock across an
`await`, so an append never waits for that lock there: it writes at once when the lock is
free, and otherwise hands the entry to a writer thread that waits on its own connection.
Until then the entry is already chained (in memory), visible to `entries`, and its hash is the
head. When the checkpointer is our `GroupCommitSqliteSaver` on the same file, it is the ledger's
sink (`attach`): the entries a node chained are committed in the transaction that commits the
node's writes, so they and the `audit_head` that names them are on disk together or not at all.
Appends from several processes stay one chain: every write excludes other writers of
the run (SQLite's write lock, a Postgres advisory lock) and re-sequences the entry after
whatever the database holds (`seq = max + 1`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog

from orchestrator._logging import redact_secrets
from orchestrator.storage import Backend, backend_of, safe_url, sqlite_path
from orchestrator.storage._ledger_db import EntrySink, LedgerDb, Record, open_ledger_db
from policies import REDACTED, RedactionPolicy, redaction_policy

GENESIS = "0" * 64
"""`prev_hash` of the first entry of every run."""
HASHED_FIELDS = ("run_id", "seq", "timestamp", "actor", "event", "step_id", "data", "prev_hash")
"""The fields `hash` covers (every field of an entry but the hash itself)."""

_log = structlog.get_logger("orchestrator")


class AuditEvent(StrEnum):
    """What an audit entry records."""

    RUN_STARTED = "run_started"
    RUN_FINISHED = "run_finished"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_SKIPPED = "step_skipped"
    STEP_RETRIED = "step_retried"
    ROUTE_DECIDED = "route_decided"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_APPROVED = "approval_approved"
    APPROVAL_REJECTED = "approval_rejected"
    APPROVAL_TIMED_OUT = "approval_timed_out"
    CIRCUIT_OPENED = "circuit_opened"
    CIRCUIT_CLOSED = "circuit_closed"
    CIRCUIT_HALF_OPEN = "circuit_half_open"
    COMPENSATION = "compensation"
    ROLLBACK = "rollback"
    SLA_BREACHED = "sla_breached"
    AGENT_FINISHED = "agent_finished"
    PLAN_RECORDED = "plan_recorded"
    STEP_CACHE_HIT = "step_cache_hit"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of checking a run's hash chain."""

    ok: bool
    """True when every entry is intact, in order, and none is missing."""
    checked: int
    """Entries examined."""
    first_bad_seq: int | None = None
    """Sequence number of the first entry that was altered, removed or moved (None: intact)."""
    reason: str = ""
    """What is wrong with that entry, or `intact`."""

    def __bool__(self) -> bool:
        return self.ok


def canonical_json(value: Any) -> str:
    """The canonical JSON text hashes are computed over: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of an entry's `HASHED_FIELDS`."""
    body = {field: entry[field] for field in HASHED_FIELDS}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _plain(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """JSON-safe data with secrets redacted: what is hashed is exactly what is
    stored and read back."""
    body = dict(data or {})
    try:
        # hook data is nearly always JSON's own types: redacted in one walk
        plain: dict[str, Any] = _redacted_json(body, redaction_policy())
    except _NotJsonError:
        # datetimes, enums, int keys...: turned into what JSON reads back, then redacted
        plain = json.loads(json.dumps(body, default=str))
        return dict(redact_secrets(plain))
    return plain


class _NotJsonError(Exception):
    """A value JSON would read back as something else."""


_JSON_SCALARS = frozenset({int, float, bool, type(None)})


def _redacted_json(value: Any, policy: RedactionPolicy) -> Any:
    """`policy.redact(value)` for values made of dicts with `str` keys, lists, tuples and JSON
    scalars (tuples become lists, as in JSON); raises `_NotJsonError` for anything else."""
    kind = type(value)
    if kind is str:
        return policy.redact_text(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotJsonError
            out[key] = REDACTED if policy.is_secret_key(key) else _redacted_json(item, policy)
        return out
    if kind is list or kind is tuple:
        return [_redacted_json(item, policy) for item in value]
    raise _NotJsonError


class AuditLedger:
    """Append-only, hash-chained audit entries per run, in the run database (or in memory).

    Example:
        ```python
        ledger = AuditLedger.open(Path("runs.sqlite"))
        ledger.append("run-1", event="run_started", data={"workflow_id": "loan"})
        ledger.verify("run-1")          # VerifyResult(ok=True, checked=1, ...)
        ```

    Safe to share between threads; appends from several processes form one chain, on SQLite
    and on Postgres (`AuditLedger.for_url("postgresql://...")`).
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        url: str | None = None,
    ) -> None:
        """A ledger on the SQLite file `path`, or the database `url` (neither: in memory);
        the database is opened on first use."""
        self.path = Path(path) if path is not None else None
        """The SQLite file (None: Postgres per `url`, or an in-memory database)."""
        self.url = url
        """The database URL when the ledger is not a SQLite file."""
        self._clock = clock
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._db: LedgerDb | None = None
        self._latest: dict[str, dict[str, Any]] = {}
        self._pending: deque[Record] = deque()
        self._writer: threading.Thread | None = None
        self._sink: EntrySink | None = None
        self._handed: list[Record] = []

    @classmethod
    def open(
        cls, path: Path | str | None = None, *, clock: Callable[[], float] = time.time
    ) -> AuditLedger:
        """A ledger on `path` (None: in memory), with its table created now."""
        ledger = cls(path, clock=clock)
        ledger.setup()
        return ledger

    @classmethod
    def for_url(cls, url: str, *, clock: Callable[[], float] = time.time) -> AuditLedger:
        """The ledger of a checkpointer URL: its SQLite file, its Postgres database, or memory
        for `memory`."""
        backend = backend_of(url)
        if backend is Backend.SQLITE:
            return cls(sqlite_path(url), clock=clock)
        if backend is Backend.POSTGRES:
            return cls(None, clock=clock, url=url)
        return cls(None, clock=clock)

    # -- connection --------------------------------------------------------------------------

    def setup(self) -> None:
        """Open the database and create the table (idempotent). Call it before a run starts:
        creating the table waits for the write lock, which a hook must never do."""
        with self._lock:
            self._conn()

    def _conn(self) -> LedgerDb:
        if self._db is None:
            self._db = open_ledger_db(self.path if self.path is not None else self.url)
        return self._db

    def attach(self, sink: EntrySink) -> bool:
        """Commit deferred entries in `sink`'s transactions (the checkpointer's, on the same
        SQLite file) instead of a transaction of their own; False when `sink` writes
        elsewhere."""
        if self.path is None or sink.path != self.path.resolve():
            return False
        with self._lock:
            self._sink = sink
        return True

    def detach(self, sink: EntrySink) -> None:
        """Stop using `sink` (call `flush` first: entries it holds are committed by it)."""
        with self._lock:
            if self._sink is sink:
                self._sink = None

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every entry is in the database; False if `timeout` passed first.

        Do not call it on an event loop that runs graphs (the writer may be waiting for the
        checkpointer's commit, and a sink commits on that loop); use
        `asyncio.to_thread(ledger.flush)`.
        """
        with self._drained:
            if self._pending:
                # entries deferred to a commit that never came (a run cancelled mid-superstep)
                self._start_writer()
            return self._drained.wait_for(lambda: not self._pending and not self._handed, timeout)

    def close(self) -> None:
        """Write what is pending, then close the database connection."""
        self.flush()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- writing -----------------------------------------------------------------------------

    def append(
        self,
        run_id: str,
        *,
        event: str,
        actor: str = "system",
        step_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        dedupe_key: str | None = None,
        defer: bool = False,
    ) -> dict[str, Any]:
        """Chain a new entry to the run's trail and return it.

        With `defer`, the entry is chained at once but stored with the next `commit()` (or
        `head()`), so the entries of one superstep share one transaction.

        `data` is redacted (values under secret-looking keys) before it is hashed and stored.
        With `dedupe_key`, an entry already recorded under that key for the run is returned
        instead of a new one (used for events that replays report again).
        """
        with self._lock:
            db = self._conn()
            if dedupe_key is not None and (seen := self._recorded(db, run_id, dedupe_key)):
                return seen
            seq, prev = self._head_of(db, run_id)
            entry: dict[str, Any] = {
                "run_id": run_id,
                "seq": seq + 1,
                "timestamp": datetime.fromtimestamp(self._clock(), UTC).isoformat(),
                "actor": actor,
                "event": str(event),
                "step_id": step_id,
                "data": _plain(data),
                "prev_hash": prev,
            }
            entry["hash"] = entry_hash(entry)
            self._latest[run_id] = entry
            record = (entry, dedupe_key)
            if defer and self._writer is None:
                self._pending.append(record)
            elif self._writer is None and self._handed and self._hand_over(record):
                # after the entries the sink still holds: in chain order, and never around
                # a checkpoint that names them; with none held, store it now (below)
                pass
            elif self._writer is None and db.try_insert([*self._pending, record], _rechain):
                self._pending.clear()
                self._drained.notify_all()
            else:
                self._pending.append(record)
                self._start_writer()
            return dict(entry)

    def _recorded(self, db: LedgerDb, run_id: str, key: str) -> dict[str, Any] | None:
        for entry, pending_key in [*self._handed, *self._pending]:
            if pending_key == key and entry["run_id"] == run_id:
                return dict(entry)
        return db.recorded(run_id, key)

    def _head_of(self, db: LedgerDb, run_id: str) -> tuple[int, str]:
        latest = self._latest.get(run_id)
        if latest is not None:
            return int(latest["seq"]), str(latest["hash"])
        return db.stored_head(run_id)

    def commit(self) -> None:
        """Store deferred entries now, in one transaction (or via the writer when busy)."""
        with self._lock:
            if not self._pending or self._writer is not None or self._hand_over():
                return
            if self._conn().try_insert(list(self._pending), _rechain):
                self._pending.clear()
                self._drained.notify_all()
            else:
                self._start_writer()

    def _hand_over(self, *more: Record) -> bool:
        """Give the pending entries (and `more`) to the sink; under the lock."""
        batch = [*self._pending, *more]
        if self._sink is None or not self._sink.store_entries(
            batch, _rechain, lambda error: self._stored(batch, error)
        ):
            return False
        self._handed.extend(batch)
        self._pending.clear()
        return True

    def _stored(self, batch: list[Record], error: BaseException | None) -> None:
        """The sink committed `batch`, or failed: then the writer thread stores it."""
        done = {id(entry) for entry, _ in batch}
        with self._lock:
            self._handed = [r for r in self._handed if id(r[0]) not in done]
            if error is not None and self._writer is None:
                self._pending.extendleft(reversed(batch))
                self._start_writer()
            elif error is not None:
                self._pending.extend(batch)  # the writer pops from the left: keep its batch
            self._drained.notify_all()

    def _start_writer(self) -> None:
        if self._writer is None:
            # not a daemon: an exiting process still writes its last entries
            self._writer = threading.Thread(
                target=self._drain, name="orchestrator-audit-writer", daemon=False
            )
            self._writer.start()

    def _drain(self) -> None:
        """Writer thread: store what is pending, waiting for the write lock on a connection
        of its own and never while holding the ledger's lock (a hook on the event loop may
        need it while the checkpointer holds the database's lock across an `await`)."""
        try:
            db = self._conn()
            while True:
                with self._lock:
                    batch = list(self._pending)
                    if not batch:
                        self._writer = None
                        self._drained.notify_all()
                        return
                db.insert(batch, _rechain)
                with self._lock:
                    for _ in batch:
                        self._pending.popleft()
        except Exception as exc:  # noqa: BLE001 -- a thread has nobody to raise to: log it
            self._abandon(exc)

    def _abandon(self, exc: Exception) -> None:
        with self._lock:
            lost = [entry for entry, _ in self._pending]
            self._pending.clear()
            self._writer = None
            self._drained.notify_all()
        where = str(self.path) if self.path is not None else safe_url(self.url or "memory")
        _log.error("audit_entries_not_written", error=str(exc), path=where, entries=lost)

    # -- reading -----------------------------------------------------------------------------

    def entries(self, run_id: str) -> list[dict[str, Any]]:
        """The run's entries, oldest first (including any the writer thread has not yet
        stored)."""
        with self._lock:
            stored = self._conn().rows(run_id)
            seen = {entry["seq"] for entry in stored}
            waiting = [
                dict(e)
                for e, _ in [*self._handed, *self._pending]
                if e["run_id"] == run_id and e["seq"] not in seen
            ]
        return stored + waiting

    def head(self, run_id: str) -> str | None:
        """Hash of the run's latest entry (None: no entries); stores deferred entries first,
        so the head a checkpoint records is in the database before that checkpoint."""
        self.commit()
        with self._lock:
            seq, value = self._head_of(self._conn(), run_id)
        return value if seq else None

    def verify(
        self, run_id: str, *, expected_head: str | None = None, finished: bool = False
    ) -> VerifyResult:
        """Check the run's chain; name the first entry altered, removed or out of place.

        `expected_head` is the chain head the run's state recorded (`audit_head`): when it is
        given and no entry has that hash, entries at the end of the trail were removed; when
        the run `finished`, it must be the last entry.
        """
        return verify_entries(self.entries(run_id), expected_head=expected_head, finished=finished)

    def export_jsonl(self, run_id: str) -> str:
        """The run's entries as JSON Lines (canonical JSON, one entry per line)."""
        return "".join(canonical_json(entry) + "\n" for entry in self.entries(run_id))


def verify_entries(
    entries: Iterable[Mapping[str, Any]],
    *,
    expected_head: str | None = None,
    finished: bool = False,
) -> VerifyResult:
    """Check a run's entries, as read in `seq` order (see `AuditLedger.verify`).

    With `finished` (the run ended), `expected_head` must be the last entry: nothing is
    appended to a finished run, so entries after its recorded head were added later.
    """
    prev, checked, hashes = GENESIS, 0, set()
    for checked, entry in enumerate(entries, start=1):
        seq = entry.get("seq")
        if seq != checked:
            return VerifyResult(
                False,
                checked,
                checked,
                f"entry {checked} is missing: the trail jumps from entry {checked - 1} to "
                f"entry {seq} (entries were removed or renumbered)",
            )
        if entry.get("prev_hash") != prev:
            return VerifyResult(
                False,
                checked,
                checked,
                f"entry {checked} does not follow entry {checked - 1} (prev_hash mismatch): "
                "entries were removed or reordered",
            )
        try:
            actual = entry_hash(entry)
        except (KeyError, TypeError, ValueError) as exc:
            return VerifyResult(False, checked, checked, f"entry {checked} is malformed: {exc}")
        if actual != entry.get("hash"):
            return VerifyResult(
                False,
                checked,
                checked,
                f"entry {checked} was altered: its content does not match its hash",
            )
        prev = actual
        hashes.add(actual)
    if expected_head is not None and expected_head not in hashes:
        return VerifyResult(
            False,
            checked,
            checked + 1,
            f"entries after entry {checked} were removed: the run's state records a later "
            f"chain head ({expected_head[:12]}...) that no entry has",
        )
    if finished and expected_head is not None and prev != expected_head:
        return VerifyResult(
            False,
            checked,
            checked,
            "entries were added after the run finished: its recorded chain head is not the "
            "last entry",
        )
    return VerifyResult(True, checked, None, "intact")


def _rechain(entry: dict[str, Any], seq: int, prev_hash: str) -> None:
    """Move an entry after what the database holds (another process appended meanwhile);
    updated in place, so the cached head follows."""
    entry.update(seq=seq, prev_hash=prev_hash)
    entry["hash"] = entry_hash(entry)
