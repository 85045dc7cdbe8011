"""Every command behaves the same on Postgres as on SQLite, through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import ADA, GRACE, SMALL
from scene import WAIT, Scene

REPO = Path(__file__).resolve().parents[3]
LOAN = "examples/loan_approval/workflow.yaml"

pytestmark = pytest.mark.timeout(600)  # a dozen CLI processes per test on a loaded machine


def _repo_cli(db: str, ledger: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_DB"}
    env.update(LANGGRAPH_STRICT_MSGPACK="true", LOAN_LEDGER=str(ledger))
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, "--db", db],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in done.stderr, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def _ledger(path: Path) -> list[str]:
    return [json.loads(line)["kind"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_loan_example_approved_end_to_end(any_db: str, tmp_path: Path) -> None:
    """run, approve twice, status, runs, audit --verify, metrics and optimize on each backend."""
    ledger = tmp_path / "ledger.jsonl"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return _repo_cli(any_db, ledger, *args)

    started = cli("run", LOAN, "--run-id", "loan-1", "--input", json.dumps(ADA), "--json")
    assert started.returncode == 3, started.stderr
    assert _json(started)["status"] == "waiting_approval"
    assert cli("approve", "loan-1", "--as", "ana", "--json").returncode == 3
    assert cli("approve", "loan-1", "--as", "mallory", "--json").returncode == 2
    done = cli("approve", "loan-1", "--as", "ben", "--json")
    assert done.returncode == 0, done.stderr
    assert _json(done)["result"]["decision"] == "approved"
    assert _json(cli("status", "loan-1", "--json"))["status"] == "completed"
    assert _ledger(ledger) == ["debit", "credit"]
    runs = _json(cli("runs", "--json"))["runs"]
    assert [(r["run_id"], r["status"]) for r in runs] == [("loan-1", "completed")]
    verify = cli("audit", "loan-1", "--verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    events = Counter(e["event"] for e in _json(cli("audit", "loan-1", "--json"))["entries"])
    assert events["approval_approved"] == 2
    assert events["run_finished"] == 1
    metrics = cli("metrics", "--once")
    assert metrics.returncode == 0, metrics.stderr
    assert 'orchestrator_runs{status="completed",workflow="loan-approval"} 1.0' in metrics.stdout
    optimize = cli("optimize", "--json")
    assert optimize.returncode == 0, optimize.stderr
    assert "loan-approval" in optimize.stdout


def test_loan_example_rejected_and_rolled_back(any_db: str, tmp_path: Path) -> None:
    """A rejection refunds the fee; a rollback refunds a disbursement and resume pays again."""
    ledger = tmp_path / "ledger.jsonl"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return _repo_cli(any_db, ledger, *args)

    assert cli("run", LOAN, "--run-id", "g", "--input", json.dumps(GRACE)).returncode == 3
    rejected = cli("reject", "g", "--as", "chloe", "--reason", "dti", "--json")
    assert rejected.returncode == 1, rejected.stderr
    assert _ledger(ledger) == ["debit", "refund"]
    assert cli("run", LOAN, "--run-id", "s", "--input", json.dumps(SMALL)).returncode == 0
    back = cli("rollback", "s", "--to", "disburse", "--json")
    assert back.returncode == 3, back.stderr
    assert _json(back)["status"] == "paused"
    assert _ledger(ledger) == ["debit", "refund", "credit", "refund"]
    again = cli("resume", "s", "--json")
    assert again.returncode == 0, again.stderr
    assert _ledger(ledger)[-1] == "credit"
    assert cli("audit", "s", "--verify").returncode == 0


def test_support_triage_example_runs(any_db: str, tmp_path: Path) -> None:
    """The README's first command completes on each backend."""
    data = {"subject": "Site down", "body": "outage since 9am", "email": "ada@example.com"}
    done = _repo_cli(
        any_db,
        tmp_path / "ledger.jsonl",
        "run",
        "examples/support_triage/workflow.yaml",
        "--input",
        json.dumps(data),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert _json(done)["status"] == "completed"


def _during_b(scene: Scene, command: str, run_id: str) -> tuple[int, dict[str, Any], int]:
    """Start the chain as `run_id`, send `command` from a second process while step b runs,
    let b finish once the request is queued; (command's exit code, its JSON, run's code)."""
    proc = scene.start("run", "chain.yaml", "--input", scene.input(), "--run-id", run_id)
    scene.wait_for("b's start", (scene.root / "b.started").exists, proc)
    sent = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", command, run_id, "--db", scene.db, "--json"],
        cwd=scene.root,
        env=scene.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while command not in _requests(scene):  # the request is queued: let b finish
        assert sent.poll() is None, sent.communicate()
        time.sleep(0.05)
    (scene.root / "fast").write_text("", encoding="utf-8")
    out, err = sent.communicate(timeout=WAIT)
    assert "Traceback" not in err, err
    return sent.returncode, json.loads(out), proc.wait(timeout=WAIT)


def test_pause_from_another_process_stops_a_running_run(any_db: str, tmp_path: Path) -> None:
    """`pause` from a second process parks the run at its next step boundary; resume ends it."""
    scene = Scene.make(tmp_path, any_db)
    code, paused, run_code = _during_b(scene, "pause", "p1")
    assert (code, paused["status"], run_code) == (3, "paused", 3)
    assert scene.effects() == Counter({"do a": 1, "start b": 1, "do b": 1})
    resumed = scene.cli("resume", "p1", "--json")
    assert resumed.code == 0, resumed.err
    assert scene.effects() == Counter({"do a": 1, "start b": 1, "do b": 1, "do c": 1, "do d": 1})


def _requests(scene: Scene) -> list[str]:
    from orchestrator.storage import open_db

    db = open_db(scene.db)
    try:
        return [str(r[0]) for r in db.query("SELECT request FROM orchestrator_requests")]
    except Exception:
        return []
    finally:
        db.close()


def test_sweep_decides_an_expired_approval(any_db: str, tmp_path: Path) -> None:
    """`sweep` rejects an approval past its deadline, once, on each backend."""
    scene = Scene.make(tmp_path, any_db)
    started = scene.cli("run", "deadline.yaml", "--input", scene.input(), "--json")
    assert started.code == 3, started.err
    run_id = json.loads(started.out)["run_id"]
    time.sleep(1.5)
    first, second = scene.cli("sweep", "--json"), scene.cli("sweep", "--json")
    assert [r["run_id"] for r in json.loads(first.out)["swept"]] == [run_id]
    assert json.loads(second.out)["swept"] == []
    assert json.loads(scene.cli("status", run_id, "--json").out)["status"] == "failed"
    assert scene.effects() == Counter()


def test_cancel_from_another_process_ends_a_running_run(any_db: str, tmp_path: Path) -> None:
    """`cancel` while another process runs the chain ends it cancelled; no later step runs."""
    scene = Scene.make(tmp_path, any_db)
    code, cancelled, run_code = _during_b(scene, "cancel", "c1")
    assert (code, cancelled["status"], run_code) == (1, "cancelled", 1)
    assert scene.effects()["do c"] == 0


def test_a_killed_run_is_resumed_at_once_on_the_same_host(any_db: str, tmp_path: Path) -> None:
    """After SIGKILL the dead process's lease does not block a resume on the same host."""
    scene = Scene.make(tmp_path, any_db)
    proc = scene.start("run", "chain.yaml", "--input", scene.input(), "--run-id", "k1")
    scene.wait_for("b's start", (tmp_path / "b.started").exists, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=WAIT)
    (tmp_path / "fast").write_text("", encoding="utf-8")
    resumed = scene.cli("resume", "k1", "--json")
    assert resumed.code == 0, resumed.err
    assert scene.effects() == Counter({"do a": 1, "start b": 2, "do b": 1, "do c": 1, "do d": 1})


@pytest.mark.parametrize("command", [["status", "x"], ["runs"], ["audit", "x"], ["db", "upgrade"]])
def test_a_wrong_password_is_never_printed(pg_url: str, command: list[str]) -> None:
    """A connection error names the server and the reason but never the URL's password."""
    url = pg_url.replace("postgresql://postgres@", "postgresql://nosuchuser:hunter2secret@")
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *command, "--db", url],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "hunter2secret" not in done.stdout + done.stderr
    assert "nosuchuser:***@" in done.stderr
    assert "Traceback" not in done.stderr


WITHOUT_POSTGRES = """
import sys
for name in ("psycopg", "psycopg_pool", "langgraph.checkpoint.postgres",
             "langgraph.checkpoint.postgres.aio"):
    sys.modules[name] = None  # as on a machine without the postgres extra
from orchestrator._cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", [["status", "x"], ["runs"], ["db", "upgrade"]])
def test_without_the_postgres_extra_the_error_names_the_install_command(
    command: list[str],
) -> None:
    """A postgresql:// URL without the Postgres packages says what to install, exit 2."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_POSTGRES, *command, "--db", "postgresql://u:pw@h/db"],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install -e '.[postgres]'" in done.stderr
    assert ":pw@" not in done.stderr


def test_db_upgrade_creates_then_reports_up_to_date(any_db: str, tmp_path: Path) -> None:
    """`db upgrade` applies every migration once; a second run applies none (exit 0 both)."""
    first = _repo_cli(any_db, tmp_path / "l.jsonl", "db", "upgrade", "--json")
    second = _repo_cli(any_db, tmp_path / "l.jsonl", "db", "upgrade", "--json")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    before, after = _json(first), _json(second)
    assert before["previous_version"] == 0
    assert [m["version"] for m in before["applied"]] == list(range(1, before["version"] + 1))
    assert after["applied"] == []
    assert after["previous_version"] == after["version"]


def test_a_server_that_never_answers_times_out_clearly(tmp_path: Path) -> None:
    """A Postgres URL whose server accepts and never answers fails within the connect timeout,
    with a one-line message naming the wait and how to lengthen it (exit 2)."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql://app:s3cret@127.0.0.1:{port}/runs"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "status", "x", "--db", url],
            env={**os.environ, "ORCHESTRATOR_DB_CONNECT_TIMEOUT": "1"},
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )
        elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert "no answer within 1s" in done.stderr
    assert "ORCHESTRATOR_DB_CONNECT_TIMEOUT" in done.stderr
    assert "s3cret" not in done.stderr
    assert elapsed < 30
