"""Kept for imports written before `orchestrator.storage`: use `orchestrator.storage`."""

from orchestrator.storage import (
    ALLOWED_MODULES,
    DEFAULT_DB,
    default_db,
    open_checkpointer,
    serializer,
    sqlite_path,
)

__all__ = [
    "ALLOWED_MODULES",
    "DEFAULT_DB",
    "default_db",
    "open_checkpointer",
    "serializer",
    "sqlite_path",
]
