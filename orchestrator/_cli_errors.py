"""What the command line says, and which exit code it returns, for every error it can meet.

Every error ends as one line on stderr (`error: ...`) and a contract exit code: 2 for bad
definitions, input, usage and storage the command cannot use; 3 for a fault that leaves the
run resumable (full disk, busy database, interrupt), naming the command that resumes it; 1
for anything unexpected (with `--log-level DEBUG` the traceback follows).
"""

from __future__ import annotations

import errno
import sqlite3
import traceback

from policies import redact_text
from state import OrchestratorError

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "EXIT_WAITING", "explain"]

EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 1, 2, 3

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_WRITE = (errno.EIO,)
"""A write the disk refused for another reason than space: the run may still be resumed."""
_SERDE = "langgraph/checkpoint/serde/"


def _resume_hint(command: str | None, run_id: str | None) -> str:
    if command in ("run", "resume", "approve", "reject", "rollback", "cancel") and run_id:
        return f"; the run is resumable: once that is fixed, run `orchestrator resume {run_id}`"
    return "; nothing was changed"


def _storage(exc: BaseException) -> str | None:
    """`full`, `write`, `locked` or `damaged` for a storage fault, else None."""
    text = str(exc).lower()
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return "full"
    if isinstance(exc, OSError) and exc.errno in _WRITE:
        return "write"
    if isinstance(exc, sqlite3.Error):
        if "full" in text:
            return "full"
        if "disk i/o error" in text:
            return "write"
        if "locked" in text or "busy" in text:
            return "locked"
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            return "damaged"
        if "no such table" in text or "malformed" in text or "not a database" in text:
            return "damaged"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def explain(exc: BaseException, *, command: str | None, run_id: str | None) -> tuple[str, int]:
    """The one-line message and exit code for `exc`, raised by `command` on `run_id`."""
    if isinstance(exc, OrchestratorError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted" + _resume_hint(command, run_id), EXIT_WAITING
    for cause in _chain(exc):
        kind = _storage(cause)
        detail = redact_text(str(cause)) or type(cause).__name__
        if kind == "full":
            return f"the disk is full ({detail})" + _resume_hint(command, run_id), EXIT_WAITING
        if kind == "write":
            return (
                f"the disk refused a write ({detail}); check its space, quotas, file-size "
                "limits and health" + _resume_hint(command, run_id),
                EXIT_WAITING,
            )
        if kind == "locked":
            return (
                f"the run database is busy ({detail}); another process holds it too long"
                + _resume_hint(command, run_id),
                EXIT_WAITING,
            )
        if kind == "damaged":
            return (
                f"the run database is damaged or is not a run database ({detail}); restore it "
                "from a backup, or pass another one with --db",
                EXIT_USAGE,
            )
    if _is_unreadable_checkpoint(exc):
        return (
            f"a checkpoint of this run cannot be read ({type(exc).__name__}: "
            f"{redact_text(str(exc))}); the database was altered or written by an incompatible "
            "version: restore it from a backup",
            EXIT_USAGE,
        )
    if isinstance(exc, RecursionError):
        return "the data is nested too deeply to process; flatten it", EXIT_USAGE
    if isinstance(exc, MemoryError):
        return "out of memory; the data is too large for this machine", EXIT_FAILED
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}" + _resume_hint(command, run_id), EXIT_USAGE
    message = f"unexpected {type(exc).__name__}: {redact_text(str(exc))}"
    return message + " (rerun with --log-level DEBUG for the traceback)", EXIT_FAILED


def _is_unreadable_checkpoint(exc: BaseException) -> bool:
    """True when `exc` was raised while LangGraph's serializer decoded a stored checkpoint."""
    for item in _chain(exc):
        frames = traceback.extract_tb(item.__traceback__)
        if any(_SERDE in frame.filename.replace("\\", "/") for frame in frames):
            return True
    return False
