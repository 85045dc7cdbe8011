"""The examples gallery: every example validates, and runs through the CLI as its README says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.document_extraction.service import ExtractionServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/workflow.yaml"))


def _cli(db: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Run `orchestrator ARGS --json` from the repository root on database `db`."""
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args, "--db", f"sqlite:///{db}", "--json"],
        cwd=ROOT,
        env={**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_the_gallery_has_at_least_five_examples() -> None:
    """At least five runnable examples (the research assistant arrives with the agents work)."""
    names = {p.name for p in EXAMPLES}
    assert {"loan_approval", "support_triage", "parallel_code_review", "document_extraction"} <= (
        names
    )
    assert len(names) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_has_a_readme_and_validates(example: Path) -> None:
    """Each example has a README and a definition whose actions module registers every action."""
    readme = (example / "README.md").read_text(encoding="utf-8")
    assert f"examples/{example.name}/workflow.yaml" in readme
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator", "validate", str(example / "workflow.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_support_triage_escalates_an_outage(tmp_path: Path) -> None:
    """The README's first command: an outage from an enterprise customer is escalated."""
    data = {"subject": "Site down", "body": "outage since 9am", "email": "ada@example.com"}
    code, out = _cli(
        tmp_path / "runs.sqlite",
        "run",
        "examples/support_triage/workflow.yaml",
        "--input",
        json.dumps(data),
    )
    assert (code, out["status"]) == (0, "completed")
    assert "escalate" in out["completed_steps"]
    assert "auto_reply" in out["skipped_steps"]


@pytest.mark.parametrize(
    ("sample", "verdict", "skipped"),
    [
        ("sample_pr.json", "request_changes", "approve_pr"),
        ("clean_pr.json", "approve_pr", "request_changes"),
    ],
)
def test_code_review_routes_by_blocking_findings(
    tmp_path: Path, sample: str, verdict: str, skipped: str
) -> None:
    """A PR with a hard-coded secret gets changes requested; a clean one is approved."""
    code, out = _cli(
        tmp_path / "runs.sqlite",
        "run",
        "examples/parallel_code_review/workflow.yaml",
        "--input",
        f"@examples/parallel_code_review/{sample}",
    )
    assert (code, out["status"]) == (0, "completed")
    assert verdict in out["completed_steps"]
    assert skipped in out["skipped_steps"]
    assert {"style", "security", "tests", "complexity"} <= set(out["completed_steps"])


def test_code_review_passes_its_threshold_when_one_reviewer_gives_up(tmp_path: Path) -> None:
    """A huge diff makes one of four reviewers fail; 3/4 meets the 0.75 threshold."""
    lines = "".join(f"+x_{i} = {i}\n" for i in range(600))
    pr = {"title": "Generated", "diff": f"--- a/gen.py\n+++ b/gen.py\n{lines}"}
    (tmp_path / "pr.json").write_text(json.dumps(pr), encoding="utf-8")
    code, out = _cli(
        tmp_path / "runs.sqlite",
        "run",
        "examples/parallel_code_review/workflow.yaml",
        "--input",
        f"@{tmp_path / 'pr.json'}",
    )
    assert (code, out["status"]) == (0, "completed")
    assert out["failed_steps"] == ["complexity"]
    assert out["result"]["summary"]["reviewers"] == ["security", "style", "tests"]


@pytest.fixture
def extractor() -> Iterator[ExtractionServer]:
    """The example's extraction service on a free loopback port; its first 2 answers are 503."""
    server = ExtractionServer(port=0, fail_first=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _document(name: str, extractor: ExtractionServer) -> str:
    data = json.loads((ROOT / "examples" / "document_extraction" / name).read_text("utf-8"))
    return json.dumps({**data, "extractor_url": extractor.url})


def test_document_extraction_retries_the_webhook_until_it_answers(
    tmp_path: Path, extractor: ExtractionServer
) -> None:
    """Two 503 answers are retried with backoff; the third extracts every field and stores."""
    host = extractor.url.removeprefix("http://")
    code, out = _cli(
        tmp_path / "runs.sqlite",
        "run",
        "examples/document_extraction/workflow.yaml",
        "--input",
        _document("invoice.json", extractor),
        env={"ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS": host},
    )
    assert (code, out["status"]) == (0, "completed"), out["error"]
    assert extractor.requests == 3
    assert out["result"]["fields"] == {
        "invoice_number": "INV-2026-114",
        "total": 1280.5,
        "vendor": "ACME Tools Ltd",
        "date": "2026-11-02",
    }
    assert out["result"]["record_id"].startswith("DOC-")
    assert "review" in out["skipped_steps"]


def test_document_extraction_asks_a_clerk_when_fields_are_missing(
    tmp_path: Path, extractor: ExtractionServer
) -> None:
    """An unreadable scan waits for the clerk (exit 3); the clerk's approval stores it."""
    env = {"ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS": extractor.url.removeprefix("http://")}
    db = tmp_path / "runs.sqlite"
    code, out = _cli(
        db,
        "run",
        "examples/document_extraction/workflow.yaml",
        "--input",
        _document("scan.json", extractor),
        "--run-id",
        "scan-1",
        env=env,
    )
    assert (code, out["status"]) == (3, "waiting_approval")
    assert out["pending_approval"]["approvers"] == ["clerk"]
    code, out = _cli(db, "approve", "scan-1", "--as", "clerk", env=env)
    assert (code, out["status"]) == (0, "completed")
    assert "store_reviewed" in out["completed_steps"]
