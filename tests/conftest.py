"""Fixtures shared by every test package: a run database, an injected clock and sleep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
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
