"""Database URLs: which backend a URL names, and how to print one without its password."""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from state import CheckpointerError

DEFAULT_DB = "sqlite:///.orchestrator/runs.sqlite"
"""Where runs live when nothing else is said: a SQLite file under the current directory."""

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a database server to answer (`$ORCHESTRATOR_DB_CONNECT_TIMEOUT`)."""

POSTGRES_EXTRA = "pip install -e '.[postgres]'"
"""What brings the Postgres packages (langgraph-checkpoint-postgres, psycopg, psycopg-pool)."""


def postgres_missing(url: str) -> CheckpointerError:
    """The error for a Postgres URL when the Postgres packages are not installed."""
    return CheckpointerError(
        f"{safe_url(url)} is a Postgres database, and the Postgres packages are not "
        f"installed; run `{POSTGRES_EXTRA}`"
    )


class Backend(StrEnum):
    """Where a run database lives."""

    MEMORY = "memory"
    SQLITE = "sqlite"
    POSTGRES = "postgres"


def backend_of(url: str) -> Backend:
    """The backend a checkpointer URL names; `CheckpointerError` for anything else."""
    if url in ("memory", "memory://"):
        return Backend.MEMORY
    if url.startswith("sqlite:///"):
        if url in ("sqlite:///:memory:", "sqlite:///"):
            raise CheckpointerError(
                f"{url!r} names no file: an in-memory SQLite database would vanish with the "
                "process and every run in it; use `memory` for a throw-away run database or "
                "`sqlite:///path/runs.sqlite` for a file"
            )
        return Backend.SQLITE
    if url.startswith(("postgresql://", "postgres://")):
        return Backend.POSTGRES
    raise CheckpointerError(
        f"unknown database url {safe_url(url)!r}; use `memory`, `sqlite:///path/runs.sqlite` "
        "or `postgresql://user@host/db`"
    )


def default_db() -> str:
    """`$ORCHESTRATOR_DB`, or the SQLite file under `.orchestrator/`."""
    return os.environ.get("ORCHESTRATOR_DB") or DEFAULT_DB


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///relative` or `sqlite:////absolute` url."""
    return Path(url.removeprefix("sqlite:///"))


def connect_timeout() -> float:
    """Seconds to wait for a database server (`$ORCHESTRATOR_DB_CONNECT_TIMEOUT`, default 10)."""
    raw = os.environ.get("ORCHESTRATOR_DB_CONNECT_TIMEOUT")
    try:
        value = float(raw) if raw else CONNECT_TIMEOUT
    except ValueError:
        raise CheckpointerError(
            f"ORCHESTRATOR_DB_CONNECT_TIMEOUT={raw!r} is not a number of seconds; set it to e.g. 10"
        ) from None
    return max(value, 1.0)


_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


def safe_url(url: str) -> str:
    """`url` with its password (in the netloc or the query) replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)
    netloc = parts.netloc
    secret_query = any(
        k.lower() in _SECRET_QUERY_KEYS for k, _ in parse_qsl(parts.query, keep_blank_values=True)
    )
    if "@" not in netloc and not secret_query:
        return url
    if "@" in netloc:
        userinfo, _, hostpart = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostpart}"
    query = parts.query
    if query:
        pairs = [
            (k, "***" if k.lower() in _SECRET_QUERY_KEYS else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, url: str) -> str:
    """`text` (an error message) with any password of `url` replaced by `***`."""
    parts = urlsplit(url)
    secrets = [parts.password] if parts.password else []
    secrets += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_QUERY_KEYS and v]
    for secret in secrets:
        text = text.replace(secret, "***")
    return text.replace(url, safe_url(url))
