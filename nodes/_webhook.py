"""Webhook steps: an HTTP call to an allowed host, following only allowed redirects.

Every URL a webhook touches, the first and each redirect target, must name a host in the
orchestrator's `webhook_allow_hosts`; nothing is allowed by default, and a refused URL gets no
request at all. Every failure to get a usable answer (refused host, unreachable server,
timeout, too many redirects, a 4xx or 5xx status) is raised as an error the step's retry policy
understands: `WebhookNotAllowedError` is never retried, `WebhookError` is.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from nodes._services import RunServices
from policies import fill_placeholders, is_secret_key
from state import (
    MappingError,
    StepType,
    WebhookConfig,
    WebhookError,
    WebhookNotAllowedError,
    WorkflowStep,
)

MAX_REDIRECTS = 5
ALLOW_HOSTS_SETTING = "webhook_allow_hosts (CLI: ORCHESTRATOR_WEBHOOK_ALLOW_HOSTS)"

# Sent only to the URL the step names; a redirect to another origin must not receive them
# (nor any header the redaction policy calls secret, e.g. X-Api-Key).
_CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")

Origin = tuple[str, str, int]


def _origin(url: str) -> Origin | None:
    """`(scheme, host, port)` of an http(s) URL, or None when it is not one."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number or out of range
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return None
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def host_allowed(url: str, allowed: frozenset[str]) -> bool:
    """True when the url's `host` or `host:port` is allowed (`*` allows every host).

    Hosts are compared by name, never resolved: allowing `127.0.0.1` does not allow
    `localhost`. An IPv6 host is written bare (`::1`) or bracketed (`[::1]`, `[::1]:8080`).
    """
    origin = _origin(url)
    if origin is None:
        return False
    _, host, port = origin
    names = {host, f"[{host}]", _host_port(host, port)}
    return "*" in allowed or not names.isdisjoint(allowed)


def _shown(url: str) -> str:
    """The URL without credentials or query string, fit for error messages and the audit log."""
    parts = urlsplit(url)
    origin = _origin(url)
    where = _host_port(origin[1], origin[2]) if origin else parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{where}{parts.path}" if parts.scheme else parts.path


def _refuse(url: str, step_id: str, why: str) -> WebhookNotAllowedError:
    origin = _origin(url)
    if origin is None:
        return WebhookNotAllowedError(
            f"webhook step '{step_id}' {why} '{_shown(url)}', which is not an http:// or "
            "https:// URL with a host and a valid port; fix the step's `webhook.url` (or the "
            "values its placeholders take)"
        )
    _, host, port = origin
    return WebhookNotAllowedError(
        f"webhook step '{step_id}' {why} '{_host_port(host, port)}', which is not allowed; add "
        f"'{host}' (any port) or '{_host_port(host, port)}' to {ALLOW_HOSTS_SETTING} to "
        "permit it"
    )


def resolve_url(config: WebhookConfig, namespace: Mapping[str, Any]) -> str:
    """The request url with `{path}` placeholders filled from the namespace."""
    return fill_placeholders(config.url, namespace)


def query_params(body: Mapping[str, Any]) -> dict[str, str]:
    """A GET webhook's query parameters: strings as they are, other values as compact JSON.

    Example:
        `query_params({"sku": "A-1", "qty": 2, "rush": True})` is
        `{"sku": "A-1", "qty": "2", "rush": "true"}`.
    """
    return {
        str(name): value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for name, value in body.items()
    }


def _redirect_method(status: int, method: str) -> str:
    """The method a redirect is followed with, as browsers, httpx and requests do it."""
    if status in (302, 303) or (status == 301 and method == "POST"):
        return "GET"
    return method


def _headers_for(url: httpx.URL, first: Origin | None, headers: httpx.Headers) -> httpx.Headers:
    """`headers` without credentials when `url` leaves the origin the step named."""
    if _origin(str(url)) == first:
        return headers
    kept = httpx.Headers(headers)
    for name in (*_CREDENTIAL_HEADERS, *(n for n in headers if is_secret_key(n))):
        kept.pop(name, None)
    return kept


async def _exchange(
    client: httpx.AsyncClient,
    config: WebhookConfig,
    url: str,
    body: Mapping[str, Any],
    headers: httpx.Headers,
    *,
    step_id: str,
    allowed: frozenset[str],
) -> httpx.Response:
    """Send the request and follow allowed redirects; return the final response."""
    first = _origin(url)
    method: str = config.method
    if method == "GET":
        request = client.build_request(method, url, headers=headers, params=query_params(body))
    else:
        request = client.build_request(method, url, headers=headers, json=dict(body))
    response = await client.send(request, stream=True)
    for hops in range(MAX_REDIRECTS + 1):
        if not response.is_redirect:
            return response
        await response.aclose()
        if hops == MAX_REDIRECTS:
            break
        target = response.url.join(response.headers["location"])
        if not host_allowed(str(target), allowed):
            raise _refuse(str(target), step_id, "was redirected to")
        next_method = _redirect_method(response.status_code, method)
        # A redirect target is used exactly as given: query parameters are not added again,
        # and a body is resent only when the method stays the same (307, 308).
        keep_body = next_method == method and method != "GET"
        request = client.build_request(
            next_method,
            target,
            headers=_headers_for(target, first, headers),
            json=dict(body) if keep_body else None,
        )
        method = next_method
        response = await client.send(request, stream=True)
    raise WebhookError(
        f"webhook step '{step_id}' was redirected more than {MAX_REDIRECTS} times, starting "
        f"from {_shown(url)}; point `webhook.url` at the final address"
    )


async def call_webhook(
    config: WebhookConfig,
    url: str,
    body: Mapping[str, Any],
    *,
    step_id: str,
    services: RunServices,
    idempotency_key: str,
) -> Any:
    """Send `body` to `url`; return the response JSON (or `{status_code, text}`).

    `body` is the JSON body, or the query parameters of a GET (see `query_params`). The
    `Idempotency-Key` header is `idempotency_key`, the same on every retry, unless the step's
    own headers set it. `config.timeout` bounds the whole call, redirects included.

    Raises `WebhookNotAllowedError` before any request to a host that is not allowed, and
    `WebhookError` when the server cannot be reached, is too slow, redirects too often or
    answers with a 4xx or 5xx status.
    """
    allowed = services.webhook_allow_hosts
    if not host_allowed(url, allowed):
        raise _refuse(url, step_id, "calls")
    headers = httpx.Headers({"Idempotency-Key": idempotency_key})
    headers.update(config.headers)
    limit = asyncio.timeout(config.timeout)
    try:
        async with (
            limit,
            httpx.AsyncClient(
                timeout=config.timeout, follow_redirects=False, transport=services.http_transport
            ) as client,
        ):
            response = await _exchange(
                client, config, url, body, headers, step_id=step_id, allowed=allowed
            )
            try:
                content = await _read_capped(
                    response, services.limits.max_webhook_response_bytes, step_id
                )
            finally:
                await response.aclose()
    except (httpx.TimeoutException, TimeoutError) as exc:
        if isinstance(exc, TimeoutError) and not limit.expired():
            raise
        raise WebhookError(
            f"webhook step '{step_id}' timed out after {config.timeout:g}s calling "
            f"{_shown(url)}; raise `webhook.timeout` if the server needs longer"
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise WebhookError(
            f"webhook step '{step_id}' could not call {_shown(url)}: "
            f"{type(exc).__name__}: {str(exc) or 'no details'}"
        ) from exc
    text = content.decode(response.encoding or "utf-8", errors="replace")
    if response.is_error:
        raise WebhookError(
            f"webhook step '{step_id}' got HTTP {response.status_code} from "
            f"{_shown(str(response.url))}: {text[:200]}"
        )
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # not JSON (or not text): hand over what there is
        return {"status_code": response.status_code, "text": text}


async def _read_capped(response: httpx.Response, cap: int, step_id: str) -> bytes:
    """The response body, read in chunks and abandoned as soon as it passes `cap` bytes."""
    declared = response.headers.get("content-length", "")
    too_big = WebhookNotAllowedError(
        f"webhook step '{step_id}' got a reply from {_shown(str(response.url))} larger than "
        f"{cap} bytes; reading stopped. Ask the server for less, or raise the limit "
        "max_webhook_response_bytes (ORCHESTRATOR_LIMIT_MAX_WEBHOOK_RESPONSE_BYTES)"
    )
    if declared.isdigit() and int(declared) > cap:
        raise too_big
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > cap:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def refused_webhooks(
    steps: Iterable[WorkflowStep], globals_: Mapping[str, Any], allowed: frozenset[str]
) -> list[tuple[str, str]]:
    """`(step_id, message)` of webhook steps whose host is known before the run and is not
    allowed.

    A url is known when it has no placeholders or only `{globals.*}` ones; urls built from
    the input or other steps' results are checked when the step runs.
    """
    problems = []
    for step in steps:
        if step.step_type is not StepType.WEBHOOK or step.webhook is None:
            continue
        paths = re.findall(r"\{([^{}]*)\}", step.webhook.url)
        if any(not p.strip().startswith("globals.") for p in paths):
            continue
        try:
            url = fill_placeholders(step.webhook.url, {"globals": dict(globals_)})
        except MappingError:
            continue  # reported by the step itself when it runs
        if not host_allowed(url, allowed):
            problems.append((str(step.step_id), str(_refuse(url, str(step.step_id), "calls"))))
    return problems
