"""Fixtures shared by every test package: a run database, an injected clock and sleep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator import ActionRegistry, EnterpriseWorkflowOrchestrator

MSGPACK_WARNINGS = (
    "deserialization allowlist",
    "Blocked deserialization",
    "Deserializing unregistered type",
    "Could not reconstruct",
)
"""Text LangGraph logs when a checkpoint holds a type it may not load: a test failure."""


@dataclass(frozen=True)
class Cli:
    """One finished `orchestrator` process."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """The `--json` object it printed."""
        return json.loads(self.stdout)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class CliWorkspace:
    """A directory to run the `orchestrator` CLI from, with its own run database."""

    root: Path

    @property
    def db(self) -> str:
        """The run database URL."""
        return f"sqlite:///{self.root / 'runs.sqlite'}"

    def command(self, *args: str) -> list[str]:
        """The argv of `orchestrator ARGS --db <this db>`."""
        return [sys.executable, "-m", "orchestrator", *args, "--db", self.db]

    def env(self) -> dict[str, str]:
        """The environment: this one, with strict checkpoint deserialisation."""
        return {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `orchestrator ARGS --db <this db>` here."""
        return subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def saga_step(sid: str, deps: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A step calling action `do` with its own id as `name`, undone by action `undo`."""
    return {
        "step_id": sid,
        "action": "do",
        "input_mapping": {"name": f"'{sid}'"},
        "dependencies": deps or [],
        "rollback_actions": ["undo"],
        **extra,
    }


class FakeClock:
    """A wall clock that moves only when told to (the allowed fake: time)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    """An injected sleep that records the delays instead of waiting."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.delays.append(round(seconds, 6))
        if self.clock is not None:
            self.clock.advance(seconds)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A real SQLite file for runs."""
    return f"sqlite:///{tmp_path / 'runs.sqlite'}"


@pytest.fixture
def sleep() -> RecordingSleep:
    """Records retry delays without waiting."""
    return RecordingSleep()


@pytest.fixture
async def make_orch(
    db_url: str, sleep: RecordingSleep
) -> AsyncIterator[Callable[..., EnterpriseWorkflowOrchestrator]]:
    """Builds orchestrators on the test's SQLite file and closes them afterwards."""
    made: list[EnterpriseWorkflowOrchestrator] = []

    def build(
        registry: ActionRegistry, config: dict[str, Any] | None = None, **kwargs: Any
    ) -> EnterpriseWorkflowOrchestrator:
        kwargs.setdefault("sleep", sleep)
        orch = EnterpriseWorkflowOrchestrator(
            config, registry=registry, checkpointer=db_url, **kwargs
        )
        made.append(orch)
        return orch

    yield build
    for orch in made:
        await orch.aclose()


# Loan applications of the loan-approval example (its README's inputs), shared by the tests
# that run the example through the CLI.
ADA = {
    "application_id": "L-1001",
    "applicant_id": "A-100",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "account": "GB33BUKB20201555555555",
    "amount": 25000,
    "term_months": 36,
}
SMALL = {**ADA, "application_id": "L-1005", "amount": 6000, "term_months": 12}
GRACE = {
    "application_id": "L-1002",
    "applicant_id": "A-200",
    "name": "Grace Hopper",
    "email": "grace@example.com",
    "account": "GB94BARC10201530093459",
    "amount": 8000,
    "term_months": 24,
}


POSTGRES_ENV = "ORCHESTRATOR_TEST_POSTGRES"
"""A Postgres server URL for tests (`.ci/run` sets it); each test gets a database of its own."""


def _postgres_base() -> str:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"Postgres tests need a server: set {POSTGRES_ENV}="
            "postgresql://postgres@127.0.0.1:5432/test (as .ci/run does)"
        )
    return base


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh Postgres database for this test (created now, dropped afterwards)."""
    import uuid

    import psycopg
    from psycopg import sql

    base = _postgres_base()
    name = f"orch_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    prefix, _, _ = base.rpartition("/")
    try:
        yield f"{prefix}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The run database URL of each backend in turn: a SQLite file, then a Postgres database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.sqlite'}"
    url: str = request.getfixturevalue("pg_url")
    return url
