"""What a new user meets in the first hour: version, pipes, approvals output, validate,
configuration typos and a `state.py` that shadows ours."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CliWorkspace

from orchestrator import EnterpriseWorkflowOrchestrator, OrchestratorConfig
from state import InvalidInputError

FIXTURES = Path(__file__).parent / "fixtures"
TWO_OF_THREE = """\
name: Two of three
workflow_id: two-of-three
actions: crashy_actions
steps:
  - {step_id: prepare, action: record, input_mapping: {workdir: input.workdir}}
  - step_id: sign_off
    step_type: human_approval
    dependencies: [prepare]
    approval: {approvers: [ann, ben, chloe], min_approvals: 2}
"""


@pytest.fixture
def ws(tmp_path: Path) -> CliWorkspace:
    """A directory with the fixture actions module and a two-of-three approval workflow."""
    shutil.copy(FIXTURES / "crashy_actions.py", tmp_path)
    shutil.copy(FIXTURES / "unknown_action.yaml", tmp_path)
    (tmp_path / "two.yaml").write_text(TWO_OF_THREE, encoding="utf-8")
    (tmp_path / "work").mkdir()
    return CliWorkspace(tmp_path)


def test_version_prints_the_installed_version() -> None:
    """`orchestrator --version` exits 0 and prints the distribution's version."""
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("orchestrator 0.")


@pytest.mark.parametrize("args", [["schema"], ["--help"]])
def test_a_closed_pipe_ends_quietly(args: list[str]) -> None:
    """Output piped into a reader that stops early (`| head -1`) ends without a traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away, as `head -1` does
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


def test_approval_output_counts_approvals_and_names_who_is_left(ws: CliWorkspace) -> None:
    """After the first of two approvals the output says `1 of 2` and omits who approved."""
    work = '{"workdir": "' + str(ws.root / "work") + '"}'
    run = ws.cli("run", "two.yaml", "--input", work, "--run-id", "R2")
    assert run.returncode == 3, run.stderr
    assert "0 of 2 approvals, waiting for one of: ann, ben, chloe" in run.stdout
    first = ws.cli("approve", "R2", "--as", "ann")
    assert first.returncode == 3, first.stderr
    assert "1 of 2 approvals, waiting for one of: ben, chloe" in first.stdout
    again = ws.cli("approve", "R2", "--as", "ann")
    assert again.returncode == 2
    assert "'ann' has already approved" in again.stderr


def test_validate_names_unregistered_actions_with_close_matches(ws: CliWorkspace) -> None:
    """`validate` imports the actions module and names an unregistered action (exit 2)."""
    text = (ws.root / "unknown_action.yaml").read_text(encoding="utf-8")
    (ws.root / "typo.yaml").write_text(text.replace("refund_everything", "recrod"), "utf-8")
    check = ws.cli("validate", "unknown_action.yaml")
    assert check.returncode == 2
    assert "step 'b'.action: 'refund_everything' is not registered in crashy_actions" in (
        check.stderr
    )
    typo = ws.cli("validate", "typo.yaml")
    assert typo.returncode == 2
    assert "(did you mean 'record'?)" in typo.stderr


def test_config_refuses_unknown_keys_with_a_close_match() -> None:
    """A misspelt configuration key is refused, naming the key it probably meant."""
    with pytest.raises(InvalidInputError, match=r"'failure_treshold' \(did you mean 'failure_thr"):
        EnterpriseWorkflowOrchestrator({"failure_treshold": 1, "bogus": True})
    with pytest.raises(InvalidInputError, match=r"'timeout'.*greater than 0"):
        OrchestratorConfig.of({"timeout": -1})


def test_config_is_typed_and_keeps_every_documented_key() -> None:
    """The documented keys are accepted, typed and readable from `orch.config`."""
    orch = EnterpriseWorkflowOrchestrator(
        {
            "failure_threshold": 2,
            "timeout": 5,
            "max_retries": 1,
            "webhook_allow_hosts": "a.example, b.example:8080",
            "max_concurrent_workflows": 4,
        },
        checkpointer="memory",
    )
    assert orch.config.failure_threshold == 2
    assert orch.config.timeout == 5.0
    assert orch.config.webhook_allow_hosts == {"a.example", "b.example:8080"}
    assert orch.config.get("max_concurrent_workflows") == 4


@pytest.mark.parametrize("shadow", ["state.py", "nodes/__init__.py"])
def test_a_shadowing_module_in_the_cwd_is_named(tmp_path: Path, shadow: str) -> None:
    """`import orchestrator` next to a user's state.py or nodes/ names it and the way out."""
    target = tmp_path / shadow
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("x = 1\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", "import orchestrator"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    name = shadow.split("/")[0]
    assert f"'{tmp_path / name}' shadows the orchestrator's `{name.removesuffix('.py')}`" in (
        proc.stderr
    )
    assert "start Python from another directory" in proc.stderr
