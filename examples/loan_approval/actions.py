"""Actions of the loan-approval example: deterministic stand-ins for a bank's services.

The credit bureau, identity and fraud services answer from a small table. The payment
gateway books payments and refunds in a JSON-lines ledger (`$LOAN_LEDGER`, default
`.orchestrator/loan-ledger.jsonl`) and, like a real gateway, books each idempotency key at
most once: a payment step that runs again after a crash returns the payment it already made.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from orchestrator import ActionRegistry, StepContext

registry = ActionRegistry()

_BUREAU = {
    "A-100": {"name": "Ada Lovelace", "score": 790, "fraud_signals": []},
    "A-200": {"name": "Grace Hopper", "score": 705, "fraud_signals": []},
    "A-300": {
        "name": "Mallory Moriarty",
        "score": 540,
        "fraud_signals": ["device seen on 14 applications"],
    },
}
_UNKNOWN = {"name": None, "score": 610, "fraud_signals": []}


class NoContactError(ValueError):
    """The applicant cannot be reached this way; retrying will not help."""


# -- intake and checks -----------------------------------------------------------------------


@registry.action("receive_application")
async def receive_application(
    application_id: str,
    applicant_id: str,
    name: str,
    account: str,
    amount: float,
    term_months: int,
    email: str | None = None,
) -> dict[str, Any]:
    """Normalise the application and work out the monthly instalment at 6.9% APR."""
    monthly_rate = 0.069 / 12
    instalment = amount * monthly_rate / (1 - (1 + monthly_rate) ** -term_months)
    return {
        "application_id": application_id,
        "applicant_id": applicant_id,
        "name": name.strip(),
        "email": email,
        "account": account.replace(" ", ""),
        "amount": amount,
        "term_months": term_months,
        "monthly_instalment": round(instalment, 2),
    }


@registry.action("check_credit")
async def check_credit(applicant_id: str) -> dict[str, Any]:
    """Ask the credit bureau for a score."""
    return {"bureau": "SimBureau", "score": _BUREAU.get(applicant_id, _UNKNOWN)["score"]}


@registry.action("verify_identity")
async def verify_identity(applicant_id: str, name: str) -> dict[str, Any]:
    """Match the applicant's name against the identity document on file."""
    on_file = _BUREAU.get(applicant_id, _UNKNOWN)["name"]
    return {"verified": on_file == name, "method": "document"}


@registry.action("screen_fraud")
async def screen_fraud(applicant_id: str, amount: float) -> dict[str, Any]:
    """Score the application for fraud: known signals make it high risk."""
    signals = list(_BUREAU.get(applicant_id, _UNKNOWN)["fraud_signals"])
    risk = "high" if signals else ("medium" if amount > 50_000 else "low")
    return {"risk": risk, "signals": signals}


# -- decisions -------------------------------------------------------------------------------


@registry.action("decline_application")
async def decline_application(score: int, verified: bool, fraud_risk: str) -> dict[str, Any]:
    """Decline, giving the applicant every reason that applies."""
    reasons = [
        reason
        for applies, reason in (
            (not verified, "identity could not be verified"),
            (fraud_risk == "high", "failed fraud screening"),
            (score < 580, f"credit score {score} is below 580"),
        )
        if applies
    ]
    return {"decision": "declined", "reasons": reasons}


@registry.action("approve_by_policy")
async def approve_by_policy(amount: float, score: int) -> dict[str, Any]:
    """Small loans to good scores are approved by policy, without a committee."""
    return {"decision": "approved", "approved_by": "policy", "amount": amount, "score": score}


# -- the payment gateway ---------------------------------------------------------------------


def _ledger() -> Path:
    return Path(os.environ.get("LOAN_LEDGER", ".orchestrator/loan-ledger.jsonl"))


def _book(entry: dict[str, Any]) -> dict[str, Any]:
    """Append `entry` to the ledger unless its idempotency key is booked already."""
    ledger = _ledger()
    ledger.parent.mkdir(parents=True, exist_ok=True)
    lines = ledger.read_text(encoding="utf-8").splitlines() if ledger.exists() else []
    for booked in map(json.loads, lines):
        if booked["idempotency_key"] == entry["idempotency_key"]:
            return dict(booked)
    with ledger.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")
    return entry


def _payment_id(prefix: str, key: str) -> str:
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


@registry.action("collect_fee")
def collect_fee(account: str, amount: float, reference: str, ctx: StepContext) -> dict[str, Any]:
    """Debit the underwriting fee from the applicant's account."""
    return _book(
        {
            "kind": "debit",
            "payment_id": _payment_id("fee", ctx.idempotency_key),
            "account": account,
            "amount": amount,
            "reference": f"{reference} underwriting fee",
            "idempotency_key": ctx.idempotency_key,
        }
    )


@registry.action("disburse_loan")
def disburse_loan(account: str, amount: float, reference: str, ctx: StepContext) -> dict[str, Any]:
    """Credit the loan to the applicant's account."""
    return _book(
        {
            "kind": "credit",
            "payment_id": _payment_id("pay", ctx.idempotency_key),
            "account": account,
            "amount": amount,
            "reference": f"{reference} disbursement",
            "idempotency_key": ctx.idempotency_key,
        }
    )


@registry.action("refund_payment")
def refund_payment(payment_id: str, amount: float, ctx: StepContext) -> dict[str, Any]:
    """Compensation: reverse a payment (it gets the compensated step's output fields)."""
    return _book(
        {
            "kind": "refund",
            "payment_id": _payment_id("ref", ctx.idempotency_key),
            "refunds": payment_id,
            "amount": amount,
            "idempotency_key": ctx.idempotency_key,
        }
    )


# -- telling the applicant -------------------------------------------------------------------


@registry.action("send_decision")
async def send_decision(
    name: str, decision: str, email: str | None = None, reasons: list[str] | None = None
) -> dict[str, Any]:
    """Email the decision; without a usable address this fails and `mail_letter` takes over."""
    if not email or "@" not in email:
        raise NoContactError(f"no usable email address for {name}: {email!r}")
    because = f" ({'; '.join(reasons)})" if reasons else ""
    return {
        "channel": "email",
        "to": email,
        "text": f"Dear {name}, your loan is {decision}{because}.",
    }


@registry.action("queue_letter")
async def queue_letter(name: str, decision: str) -> dict[str, Any]:
    """Queue a posted letter with the decision (the error handler of `notify`)."""
    return {"channel": "letter", "to": name, "text": f"Dear {name}, your loan is {decision}."}
