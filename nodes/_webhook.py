"""Webhook steps: an HTTP call to an allowed host, following only allowed redirects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from nodes._services import RunServices
from policies import fill_placeholders
from state import WebhookConfig, WebhookError, WebhookNotAllowedError

MAX_REDIRECTS = 5
ALLOW_HOSTS_SETTING = "webhook_allow_hosts (CLI: ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS)"


def host_allowed(url: str, allowed: frozenset[str]) -> bool:
    """True when the url's `host` or `host:port` is allowed (`*` allows every host)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return "*" in allowed or host in allowed or f"{host}:{port}" in allowed


def _refuse(url: str, step_id: str, why: str) -> WebhookNotAllowedError:
    parts = urlsplit(url)
    host = parts.netloc or url
    return WebhookNotAllowedError(
        f"webhook step '{step_id}' {why} '{host}', which is not allowed; add "
        f"'{parts.hostname}' to {ALLOW_HOSTS_SETTING} to permit it")


def resolve_url(config: WebhookConfig, namespace: Mapping[str, Any]) -> str:
    """The request url with `{path}` placeholders filled from the namespace."""
    return fill_placeholders(config.url, namespace)


async def call_webhook(config: WebhookConfig, url: str, body: Mapping[str, Any], *,
                       step_id: str, services: RunServices, idempotency_key: str) -> Any:
    """Send `body` to `url`; return the response JSON (or `{status_code, text}`)."""
    allowed = services.webhook_allow_hosts
    if not host_allowed(url, allowed):
        raise _refuse(url, step_id, "calls")
    headers = {"Idempotency-Key": idempotency_key, **config.headers}
    kwargs: dict[str, Any] = {"headers": headers}
    if config.method == "GET":
        kwargs["params"] = {k: str(v) for k, v in body.items()}
    else:
        kwargs["json"] = dict(body)
    async with httpx.AsyncClient(timeout=config.timeout, follow_redirects=False,
                                 transport=services.http_transport) as client:
        response = await client.request(config.method, url, **kwargs)
        for _ in range(MAX_REDIRECTS):
            if not response.is_redirect:
                break
            target = str(response.url.join(response.headers["location"]))
            if not host_allowed(target, allowed):
                raise _refuse(target, step_id, "was redirected to")
            method = "GET" if response.status_code == 303 else config.method
            kwargs_next = kwargs if method == config.method else {"headers": headers}
            response = await client.request(method, target, **kwargs_next)
        else:
            raise WebhookError(f"webhook step '{step_id}' followed {MAX_REDIRECTS} redirects "
                               f"without an answer from {url}")
    if response.is_error:
        raise WebhookError(
            f"webhook step '{step_id}' got HTTP {response.status_code} from {response.url}: "
            f"{response.text[:200]}")
    try:
        return response.json()
    except ValueError:
        return {"status_code": response.status_code, "text": response.text}
