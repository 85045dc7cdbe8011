"""Actions of the support-triage example: small, deterministic stand-ins for real services."""

from __future__ import annotations

import asyncio
import hashlib

from orchestrator import ActionRegistry, StepContext

registry = ActionRegistry()

_CUSTOMERS = {
    "ada@example.com": {"name": "Ada Lovelace", "tier": "enterprise"},
    "bob@example.com": {"name": "Bob Builder", "tier": "standard"},
}


@registry.action("classify_ticket")
async def classify_ticket(subject: str, body: str) -> dict:
    """Pick a category and priority from keywords (a model would do this in production)."""
    text = f"{subject} {body}".lower()
    category = "billing" if any(w in text for w in ("invoice", "refund", "charge")) else "technical"
    priority = "urgent" if any(w in text for w in ("down", "urgent", "outage")) else "normal"
    await asyncio.sleep(0.05)
    return {"category": category, "priority": priority}


@registry.action("fetch_customer")
async def fetch_customer(email: str) -> dict:
    """Look the customer up in the CRM."""
    await asyncio.sleep(0.1)
    return {"email": email, **_CUSTOMERS.get(email, {"name": email.split("@")[0], "tier": "free"})}


@registry.action("fetch_history")
def fetch_history(email: str) -> dict:
    """Previous tickets (a sync function: it runs in a worker thread)."""
    return {"open_tickets": len(email) % 3, "last_contact_days": 12}


@registry.action("search_knowledge_base")
async def search_knowledge_base(category: str) -> dict:
    """Articles that may answer the ticket."""
    await asyncio.sleep(0.1)
    return {"articles": [f"kb/{category}/getting-started", f"kb/{category}/faq"]}


@registry.action("page_on_call")
async def page_on_call(category: str, customer: str, within_hours: int) -> dict:
    """Page the on-call engineer for urgent or enterprise tickets."""
    return {
        "assignee": f"oncall-{category}",
        "respond_within_hours": within_hours,
        "customer": customer,
    }


@registry.action("draft_reply")
async def draft_reply(customer: str, articles: list, previous: str | None = None) -> dict:
    """Draft a reply; each rewrite reads better (clarity rises)."""
    version = 1 if previous is None else previous.count("\n") + 1
    links = ", ".join(articles or [])
    text = f"Hello {customer},\nthese articles should help: {links}" + "\n" * (version - 1)
    return {"text": text, "clarity": round(0.5 + 0.2 * version, 2)}


@registry.action("send_email")
async def send_email(
    to: str, ctx: StepContext, reply: str | None = None, assignee: str | None = None
) -> dict:
    """Send the reply; the idempotency key makes a resend after a crash a no-op upstream."""
    body = reply or f"An engineer ({assignee}) is on it."
    digest = hashlib.sha256(f"{ctx.idempotency_key}{to}{body}".encode()).hexdigest()[:12]
    return {"message_id": f"msg-{digest}", "to": to}
