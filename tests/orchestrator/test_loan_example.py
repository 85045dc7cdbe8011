"""The loan-approval example, run as its README runs it: the CLI from the repository root.

Each scenario runs real `orchestrator` subprocesses against its own SQLite file and payment
ledger (`$LOAN_LEDGER`) under a temporary directory, once (module-scoped); its tests read the
JSON the commands print and the ledger the example's payment gateway wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ADA, GRACE, SMALL, Cli

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = "examples/loan_approval/workflow.yaml"


@dataclass(frozen=True)
class Bank:
    """A run database and a payment ledger of one scenario."""

    root: Path

    def cli(self, *args: str) -> Cli:
        """Run `orchestrator ARGS --db DB --json` from the repository root."""
        env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_DB"}
        env.update(LANGGRAPH_STRICT_MSGPACK="true", LOAN_LEDGER=str(self.root / "ledger.jsonl"))
        proc = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Cli(proc.returncode, proc.stdout, proc.stderr)

    def run(self, *args: str) -> Cli:
        """A lifecycle command on this scenario's database, printing JSON."""
        return self.cli(*args, "--db", f"sqlite:///{self.root / 'x.sqlite'}", "--json")

    def entries(self) -> list[dict[str, Any]]:
        """Every entry the example's payment gateway booked, in order."""
        path = self.root / "ledger.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    def ledger(self) -> list[tuple[str, float, str | None]]:
        """`(kind, amount, refunded payment id)` of every booked entry, in order."""
        return [(e["kind"], e["amount"], e.get("refunds")) for e in self.entries()]


@dataclass(frozen=True)
class Scenario:
    """What a scenario's commands printed, and the ledger right after them."""

    bank: Bank
    steps: list[Cli]
    ledger: list[tuple[str, float, str | None]]


def _scenario(bank: Bank, *commands: tuple[str, ...]) -> Scenario:
    steps = [bank.run(*command) for command in commands]
    return Scenario(bank, steps, bank.ledger())


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """Ada's 25,000 loan: run, approved by ana, then by ben."""
    return _scenario(
        Bank(tmp_path_factory.mktemp("approved")),
        ("run", WORKFLOW, "--input", json.dumps(ADA), "--run-id", "loan-1"),
        ("approve", "loan-1", "--as", "ana", "--comment", "income verified"),
        ("approve", "loan-1", "--as", "ben"),
    )


@pytest.fixture(scope="module")
def withdrawn(approved: Scenario) -> Scenario:
    """Ada's completed loan rolled back to before `disburse`, then cancelled."""
    return _scenario(
        approved.bank,
        ("rollback", "loan-1", "--to", "disburse"),
        ("cancel", "loan-1"),
    )


@pytest.fixture(scope="module")
def redisbursed(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """A small loan (approved by policy): completed, rolled back to `disburse`, resumed."""
    return _scenario(
        Bank(tmp_path_factory.mktemp("redisbursed")),
        ("run", WORKFLOW, "--input", json.dumps(SMALL), "--run-id", "loan-5"),
        ("rollback", "loan-5", "--to", "disburse"),
        ("resume", "loan-5"),
    )


@pytest.fixture(scope="module")
def rejected(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """Grace's 8,000 loan (score below the auto-approval score): run, rejected by chloe."""
    return _scenario(
        Bank(tmp_path_factory.mktemp("rejected")),
        ("run", WORKFLOW, "--input", json.dumps(GRACE), "--run-id", "loan-2"),
        ("reject", "loan-2", "--as", "chloe", "--reason", "debt-to-income above 45%"),
    )


def _single_run(root: Path, application: dict[str, Any]) -> dict[str, Any]:
    result = Bank(root).run("run", WORKFLOW, "--input", json.dumps(application))
    assert result.code == 0, result.stderr
    return result.json()


def test_example_definition_validates(tmp_path: Path) -> None:
    """`orchestrator validate` accepts the example definition."""
    result = Bank(tmp_path).cli("validate", WORKFLOW, "--json")
    assert result.code == 0, result.stderr
    assert result.json() == {"valid": True, "workflow_id": "loan-approval", "steps": 13}


def test_large_loan_waits_for_the_committee(approved: Scenario) -> None:
    """A loan above the auto-approval limit passes its checks and waits for the committee."""
    run = approved.steps[0]
    assert run.code == 3, run.stderr
    out = run.json()
    assert out["completed_steps"] == [
        "intake",
        "checks",
        "credit",
        "identity",
        "fraud",
        "assess",
        "underwriting_fee",
    ]
    request = out["pending_approval"]
    assert (request["step_id"], request["min_approvals"]) == ("committee", 2)
    assert request["approvers"] == ["ana", "ben", "chloe"]
    assert request["summary"]["credit_score"] == 790


def test_one_approval_of_two_keeps_the_run_waiting(approved: Scenario) -> None:
    """After ana's approval the run still waits, showing her approval."""
    first = approved.steps[1]
    assert first.code == 3, first.stderr
    approvals = first.json()["pending_approval"]["approvals"]
    assert [(a["approver"], a["comment"]) for a in approvals] == [("ana", "income verified")]


def test_second_approval_disburses_and_completes(approved: Scenario) -> None:
    """ben's approval completes the run: disbursed, notified by email, exit 0."""
    second = approved.steps[2]
    assert second.code == 0, second.stderr
    out = second.json()
    assert out["status"] == "completed"
    assert out["completed_steps"][-3:] == ["committee", "disburse", "notify"]
    assert out["result"]["decision"] == "approved"
    assert out["result"]["notified_by"] == "email"
    assert out["result"]["disbursement_id"].startswith("pay-")


def test_approved_loan_books_the_fee_and_the_disbursement(approved: Scenario) -> None:
    """The ledger of an approved loan holds the fee debit and the loan credit, no refund."""
    assert approved.ledger == [("debit", 250, None), ("credit", 25000, None)]


def test_rejection_fails_the_run_at_the_committee(rejected: Scenario) -> None:
    """chloe's rejection fails the run at `committee` with her reason, exit 1."""
    run, reject = rejected.steps
    assert run.code == 3, run.stderr
    assert reject.code == 1, reject.stderr
    out = reject.json()
    assert (out["status"], out["failed_steps"]) == ("failed", ["committee"])
    assert "rejected by chloe: debt-to-income above 45%" in out["error"]["message"]


def test_rejection_refunds_the_fee_and_pays_nothing(rejected: Scenario) -> None:
    """The rejected run's compensation refunds the underwriting fee; no loan is paid out."""
    fee_id = rejected.bank.entries()[0]["payment_id"]
    assert rejected.ledger == [("debit", 250, None), ("refund", 250, fee_id)]


def test_rollback_to_disburse_refunds_the_loan_and_pauses(withdrawn: Scenario) -> None:
    """`rollback --to disburse` refunds the disbursement and leaves the run paused before it."""
    rollback = withdrawn.steps[0]
    assert rollback.code == 3, rollback.stderr
    out = rollback.json()
    assert out["status"] == "paused"
    assert out["completed_steps"][-2:] == ["underwriting_fee", "committee"]
    assert withdrawn.ledger[-1][:2] == ("refund", 25000)


def test_cancel_after_rollback_ends_the_run(withdrawn: Scenario) -> None:
    """A run paused by a rollback can be cancelled: exit 1, nothing runs again."""
    cancel = withdrawn.steps[1]
    assert cancel.code == 1, cancel.stderr
    assert cancel.json()["status"] == "cancelled"
    assert len(withdrawn.ledger) == 3


def test_resume_after_rollback_completes_the_run(redisbursed: Scenario) -> None:
    """A run rolled back to `disburse` and resumed runs `disburse` again and completes."""
    resume = redisbursed.steps[2]
    assert resume.code == 0, resume.stderr
    assert resume.json()["completed_steps"][-2:] == ["disburse", "notify"]


def test_resume_after_rollback_pays_the_loan_out_again(redisbursed: Scenario) -> None:
    """After rollback and resume the ledger holds a new disbursement, not the refunded one."""
    refunded = redisbursed.steps[0].json()["result"]["disbursement_id"]
    assert redisbursed.steps[2].json()["result"]["disbursement_id"] != refunded
    assert [kind for kind, _, _ in redisbursed.ledger] == ["credit", "refund", "credit"]


def test_small_loan_without_email_is_approved_and_posted(tmp_path: Path) -> None:
    """A small loan is approved by policy; with no email, the error handler posts a letter."""
    application = {key: value for key, value in SMALL.items() if key != "email"}
    out = _single_run(tmp_path, application)
    assert "committee" in out["skipped_steps"]
    assert out["failed_steps"] == ["notify"]
    assert out["completed_steps"][-2:] == ["disburse", "mail_letter"]
    assert out["result"]["notified_by"] == "letter"


def test_risky_application_is_declined_with_reasons(tmp_path: Path) -> None:
    """High fraud risk and a low score decline the application, and the applicant is told."""
    application = {**ADA, "applicant_id": "A-300", "name": "Mallory Moriarty", "amount": 40000}
    out = _single_run(tmp_path, application)
    assert out["completed_steps"][-2:] == ["decline", "notify"]
    assert "disburse" in out["skipped_steps"]
    assert out["result"]["decline_reasons"] == [
        "failed fraud screening",
        "credit score 540 is below 580",
    ]
