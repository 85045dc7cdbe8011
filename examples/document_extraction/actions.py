"""Actions of the document extraction example (the extraction itself is a webhook step)."""

from __future__ import annotations

import hashlib

from orchestrator import ActionRegistry, StepContext

registry = ActionRegistry()


@registry.action("load_document")
async def load_document(name: str, text: str) -> dict:
    """Normalise the document (an object store or OCR in production)."""
    return {"name": name, "text": text.strip(), "characters": len(text.strip())}


@registry.action("validate_fields")
async def validate_fields(fields: dict, required: list[str]) -> dict:
    """Which required fields the extraction did not find."""
    return {"missing": [name for name in required if not fields.get(name)]}


@registry.action("store_record")
async def store_record(name: str, fields: dict, ctx: StepContext) -> dict:
    """Store the record; its id derives from the idempotency key, so a retry stores it once."""
    digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:10]
    return {"record_id": f"DOC-{digest}", "name": name, "fields": fields}
