"""Hostile and careless input: every case ends in a one-line error and the contract's exit code."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import ActionRegistry, load_workflow
from policies import Limits
from state import AdvancedWorkflow, InvalidInputError, WorkflowDefinitionError, WorkflowStatus

WEBHOOK_ONLY = """\
name: hooks
steps:
  - step_id: w
    step_type: webhook
    webhook: {url: "http://example.com/x"}
"""

ACTIONS = """\
from orchestrator import ActionRegistry

registry = ActionRegistry()


@registry.action("echo")
def echo(value=None):
    return {"value": value}
"""

ECHO = """\
name: echo
actions: echo_actions
steps:
  - step_id: e
    action: echo
    input_mapping: {value: input.value}
    output_mapping: {value: value}
"""

BOMB = """\
name: bomb
global_variables:
  a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
steps:
  - {step_id: a, action: x}
"""


def cli(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `orchestrator ARGS` in `root` with its own database and extra environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    environ.update(LANGGRAPH_STRICT_MSGPACK="true", **env)
    db = ["--db", f"sqlite:///{root / 'runs.sqlite'}"] if "--db" not in args else []
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, *db],
        cwd=root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single `error:` line a failing command printed (and no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def echo_dir(tmp_path: Path) -> Path:
    """A directory with an echo workflow and its actions module."""
    (tmp_path / "echo_actions.py").write_text(ACTIONS)
    (tmp_path / "echo.yaml").write_text(ECHO)
    return tmp_path


# -- definitions -----------------------------------------------------------------------------


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """A YAML alias bomb (9^8 values from 600 bytes) is refused before it is expanded."""
    (tmp_path / "bomb.yaml").write_text(BOMB)
    started = time.monotonic()
    with pytest.raises(WorkflowDefinitionError, match="alias bomb"):
        load_workflow(tmp_path / "bomb.yaml")
    assert time.monotonic() - started < 5


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    """A second `steps:` key is an error naming both lines, never a silent last-wins."""
    path = tmp_path / "dup.yaml"
    path.write_text("name: d\nsteps:\n  - {step_id: a, action: x}\nsteps: []\n")
    with pytest.raises(WorkflowDefinitionError, match=r"duplicate key 'steps' on line 4 \(first"):
        load_workflow(path)


def test_duplicate_keys_in_json_are_refused(tmp_path: Path) -> None:
    """JSON definitions refuse duplicate keys too."""
    path = tmp_path / "dup.json"
    path.write_text('{"name": "a", "name": "b", "steps": []}')
    with pytest.raises(WorkflowDefinitionError, match="duplicate key 'name'"):
        load_workflow(path)


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    """`<<: *base` merges are not mistaken for duplicate keys."""
    path = tmp_path / "merge.yaml"
    path.write_text(
        "name: m\nsteps:\n  - &base {step_id: a, action: x, timeout: 5}\n"
        "  - {<<: *base, step_id: b, dependencies: [a]}\n"
    )
    workflow = load_workflow(path)
    assert [s.timeout for s in workflow.steps] == [5, 5]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_deep_nesting_is_refused(tmp_path: Path, suffix: str) -> None:
    """Definitions nested thousands deep are refused with the depth limit named."""
    path = tmp_path / f"deep{suffix}"
    deep = "[" * 5000 + "]" * 5000
    path.write_text(f'{{"name": "d", "global_variables": {{"x": {deep}}}, "steps": []}}')
    with pytest.raises(WorkflowDefinitionError, match=r"nest|depth"):
        load_workflow(path)


def test_definition_size_limit_is_configurable(tmp_path: Path) -> None:
    """A definition over `max_definition_bytes` is refused before it is parsed."""
    path = tmp_path / "big.yaml"
    path.write_text(
        "name: big\ndescription: " + "x" * 5000 + "\nsteps: [{step_id: a, action: x}]\n"
    )
    with pytest.raises(WorkflowDefinitionError, match="over the limit of 1000"):
        load_workflow(path, limits=Limits(max_definition_bytes=1000))
    assert load_workflow(path).name == "big"


def test_non_utf8_file_is_one_line_exit_2(tmp_path: Path) -> None:
    """A file that is not UTF-8 gets exit 2 and names the problem."""
    (tmp_path / "latin.yaml").write_bytes(b"name: caf\xe9\nsteps: []\n")
    proc = cli(tmp_path, "validate", "latin.yaml")
    assert proc.returncode == 2
    assert "not UTF-8" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_validate_refuses_bomb_with_exit_2(tmp_path: Path) -> None:
    """`validate` of an alias bomb exits 2 naming the limit's variable."""
    (tmp_path / "bomb.yaml").write_text(BOMB)
    proc = cli(tmp_path, "validate", "bomb.yaml")
    assert proc.returncode == 2
    assert "ORCHESTRATOR_LIMIT_MAX_DEFINITION_NODES" in proc.stderr


def test_limit_env_variable_raises_the_limit(tmp_path: Path) -> None:
    """`ORCHESTRATOR_LIMIT_MAX_DEFINITION_NODES` lets a big (honest) definition through."""
    (tmp_path / "bomb.yaml").write_text(
        BOMB.replace("  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n", "")
    )
    low = cli(tmp_path, "validate", "bomb.yaml", ORCHESTRATOR_LIMIT_MAX_DEFINITION_NODES="1000")
    assert low.returncode == 2
    high = cli(
        tmp_path, "validate", "bomb.yaml", ORCHESTRATOR_LIMIT_MAX_DEFINITION_NODES="10000000"
    )
    assert high.returncode == 0, high.stderr


def test_bad_limit_setting_is_named() -> None:
    """An unknown or non-positive limit is refused with the known names."""
    with pytest.raises(InvalidInputError, match="unknown limit 'max_cats'"):
        Limits.from_settings({"max_cats": 3})
    with pytest.raises(InvalidInputError, match="positive integer"):
        Limits(max_input_bytes=0)
    with pytest.raises(InvalidInputError, match="whole number"):
        Limits.from_settings(environ={"ORCHESTRATOR_LIMIT_MAX_INPUT_BYTES": "lots"})


# -- inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"value": NaN}', "NaN"),
        ('{"value": Infinity}', "Infinity"),
        ('{"value": 1e999}', "NaN and Infinity"),
        ('{"value": ' + "9" * 5000 + "}", "digits"),
        ('{"value": ' + "[" * 3000 + "]" * 3000 + "}", "nested deeper"),
        ('{"value": ' + "[" * 80 + "]" * 80 + "}", "nested deeper than 64"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_hostile_input_exits_2_with_one_line(echo_dir: Path, text: str, needle: str) -> None:
    """NaN, Infinity, huge numbers, deep nesting and non-objects in --input exit 2, nothing run."""
    proc = cli(echo_dir, "run", "echo.yaml", "--input", text, "--json")
    assert proc.returncode == 2
    assert needle in one_line_error(proc)
    assert proc.stdout == ""


async def test_input_size_limit_refuses_big_input(make_orch: Any) -> None:
    """`input_data` over `max_input_bytes` is refused before the run starts."""
    registry = ActionRegistry()
    registry.register("echo", lambda value=None: value)
    orch = make_orch(registry, {"limits": {"max_input_bytes": 100}})
    workflow = AdvancedWorkflow.from_dict(
        {"name": "e", "steps": [{"step_id": "e", "action": "echo"}]}
    )
    with pytest.raises(InvalidInputError, match="over the limit of 100"):
        await orch.execute_workflow(workflow, {"value": "x" * 200})


async def test_step_output_over_limit_fails_the_step(make_orch: Any) -> None:
    """A step whose output is over `max_step_output_bytes` fails with the limit named."""
    registry = ActionRegistry()

    @registry.action("big")
    async def big() -> str:
        return "x" * 5000

    orch = make_orch(registry, {"limits": {"max_step_output_bytes": 1000}})
    workflow = AdvancedWorkflow.from_dict(
        {"name": "b", "steps": [{"step_id": "b", "action": "big"}]}
    )
    run = await orch.execute_workflow(workflow)
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "over the limit of 1000" in run.error["message"]


async def test_nan_output_fails_the_step(make_orch: Any) -> None:
    """A step returning NaN fails instead of storing a value JSON cannot carry."""
    registry = ActionRegistry()

    @registry.action("nan")
    async def nan() -> dict[str, float]:
        return {"x": float("nan")}

    orch = make_orch(registry)
    workflow = AdvancedWorkflow.from_dict(
        {"name": "n", "steps": [{"step_id": "n", "action": "nan"}]}
    )
    run = await orch.execute_workflow(workflow)
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert "NaN" in run.error["message"]


# -- storage and environment -------------------------------------------------------------------


def test_memory_sqlite_url_is_refused(echo_dir: Path) -> None:
    """`--db sqlite:///:memory:` exits 2: no other command could ever see the run."""
    proc = cli(echo_dir, "run", "echo.yaml", "--db", "sqlite:///:memory:")
    assert proc.returncode == 2
    assert "--db memory" in one_line_error(proc)


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_bad_metrics_port_is_a_usage_error(echo_dir: Path, port: str) -> None:
    """A --metrics-port outside 0-65535 is a usage error (exit 2), nothing run."""
    proc = cli(echo_dir, "run", "echo.yaml", "--metrics-port", port)
    assert proc.returncode == 2
    assert "not a TCP port" in proc.stderr
    assert not (echo_dir / "runs.sqlite").exists()


def test_corrupted_checkpoint_blob_exits_2(echo_dir: Path) -> None:
    """A checkpoint blob that no longer decodes gets one line naming it and exit 2."""
    done = cli(echo_dir, "run", "echo.yaml", "--run-id", "R1", "--input", '{"value": 1}')
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(echo_dir / "runs.sqlite") as db:
        db.execute("UPDATE checkpoints SET checkpoint = x'c1ffee00deadbeef'")
    proc = cli(echo_dir, "status", "R1")
    assert proc.returncode == 2
    assert "checkpoint of this run cannot be read" in one_line_error(proc)


def test_database_that_is_not_sqlite_exits_2(echo_dir: Path) -> None:
    """A --db file that is not a database exits 2 with one line."""
    (echo_dir / "junk.sqlite").write_text("this is not a database\n" * 100)
    proc = cli(echo_dir, "status", "R1", "--db", f"sqlite:///{echo_dir / 'junk.sqlite'}")
    assert proc.returncode == 2
    assert "database" in one_line_error(proc)


def test_actions_module_failing_import_hides_its_secret(echo_dir: Path) -> None:
    """An actions module raising at import exits 2, names the module, and redacts the secret."""
    (echo_dir / "echo_actions.py").write_text('raise RuntimeError("db password=hunter2 down")\n')
    proc = cli(echo_dir, "run", "echo.yaml")
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "echo_actions" in line
    assert "hunter2" not in proc.stderr + proc.stdout


def test_actions_module_calling_sys_exit_is_an_error(echo_dir: Path) -> None:
    """An actions module calling sys.exit(0) at import makes `run` exit 2, not 0."""
    (echo_dir / "echo_actions.py").write_text("import sys\nsys.exit(0)\n")
    proc = cli(echo_dir, "run", "echo.yaml")
    assert proc.returncode == 2
    assert "sys.exit(0)" in one_line_error(proc)


def test_validate_refuses_a_fixed_webhook_host_the_allow_list_lacks(tmp_path: Path) -> None:
    """With an allow-list configured, `validate` exits 2 for a literal host outside it."""
    (tmp_path / "hooks.yaml").write_text(WEBHOOK_ONLY)
    refused = cli(tmp_path, "validate", "hooks.yaml", ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS="other.org")
    assert refused.returncode == 2
    assert "example.com" in refused.stderr
    allowed = cli(
        tmp_path, "validate", "hooks.yaml", ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS="example.com"
    )
    assert allowed.returncode == 0, allowed.stderr
    unset = cli(tmp_path, "validate", "hooks.yaml")
    assert unset.returncode == 0
    assert "warning" in unset.stderr


async def test_refused_webhook_fails_the_run_before_any_step(make_orch: Any) -> None:
    """A webhook whose fixed host is not allowed fails the run before earlier steps run."""
    calls: list[str] = []
    registry = ActionRegistry()

    @registry.action("charge")
    async def charge() -> None:
        calls.append("charge")

    workflow = AdvancedWorkflow.from_dict(
        {
            "name": "ssrf",
            "global_variables": {"api": "http://169.254.169.254"},
            "steps": [
                {"step_id": "charge", "action": "charge"},
                {
                    "step_id": "hook",
                    "step_type": "webhook",
                    "dependencies": ["charge"],
                    "webhook": {"url": "{globals.api}/latest/meta-data"},
                },
            ],
        }
    )
    run = await make_orch(registry).execute_workflow(workflow)
    assert run.status is WorkflowStatus.FAILED
    assert run.error is not None
    assert run.error["error_type"] == "WebhookNotAllowedError"
    assert calls == []


def test_json_output_is_valid_json(echo_dir: Path) -> None:
    """`--json` output always parses as strict JSON."""
    proc = cli(echo_dir, "run", "echo.yaml", "--input", '{"value": 1.5}', "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert data["result"] == {"value": 1.5}


async def test_run_state_limit_fails_the_step_that_would_pass_it(make_orch: Any) -> None:
    """Outputs are summed per run: the step whose output passes `max_run_state_bytes` fails."""
    registry = ActionRegistry()

    @registry.action("chunk")
    async def chunk() -> str:
        return "x" * 400

    orch = make_orch(registry, {"limits": {"max_run_state_bytes": 1000}})
    steps = [
        {"step_id": f"s{i}", "action": "chunk", "dependencies": [f"s{i - 1}"] if i else []}
        for i in range(4)
    ]
    run = await orch.execute_workflow(AdvancedWorkflow.from_dict({"name": "st", "steps": steps}))
    assert run.status is WorkflowStatus.FAILED
    assert run.completed_steps == ["s0", "s1"]
    assert run.error is not None
    assert run.error["step_id"] == "s2"
    assert "max_run_state_bytes" in run.error["message"]
