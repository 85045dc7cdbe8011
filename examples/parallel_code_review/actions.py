"""Actions of the parallel code review example: four rule-based reviewers of a unified diff.

They stand in for linters, scanners or LLM reviewers; each returns `{findings: [...]}` with a
`severity` of `info`, `warning` or `blocking` per finding.
"""

from __future__ import annotations

import asyncio
import re

from orchestrator import ActionRegistry, StepContext

registry = ActionRegistry()

_SECRET = re.compile(r"(api[_-]?key|password|secret|token)\s*=\s*['\"][^'\"]+['\"]", re.I)
_DANGEROUS = ("eval(", "exec(", "pickle.loads(", "shell=True", "yaml.load(")


@registry.action("fetch_pull_request")
async def fetch_pull_request(title: str, diff: str) -> dict:
    """Split the diff into changed files and added lines (a code host's API in production)."""
    files = re.findall(r"^\+\+\+ b/(\S+)", diff, flags=re.M)
    added = [
        line[1:]
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    return {"title": title, "files": files, "added": added}


@registry.action("review_style")
async def review_style(lines: list[str]) -> dict:
    """Long lines and leftover debugging."""
    await asyncio.sleep(0.02)
    findings = [
        {"severity": "warning", "message": f"line of {len(line)} characters"}
        for line in lines
        if len(line) > 100
    ]
    findings += [
        {"severity": "info", "message": f"debug output left in: {line.strip()}"}
        for line in lines
        if line.strip().startswith("print(")
    ]
    return {"findings": findings}


@registry.action("review_security")
async def review_security(lines: list[str]) -> dict:
    """Hard-coded secrets and dangerous calls block the merge."""
    await asyncio.sleep(0.03)
    findings = [
        {"severity": "blocking", "message": f"hard-coded secret: {line.strip()[:40]}"}
        for line in lines
        if _SECRET.search(line)
    ]
    findings += [
        {"severity": "blocking", "message": f"dangerous call {call}"}
        for line in lines
        for call in _DANGEROUS
        if call in line
    ]
    return {"findings": findings}


@registry.action("review_tests")
async def review_tests(files: list[str]) -> dict:
    """Source changes without test changes."""
    await asyncio.sleep(0.01)
    source = [f for f in files if f.endswith(".py") and not f.startswith("tests/")]
    tests = [f for f in files if f.startswith("tests/")]
    if source and not tests:
        return {"findings": [{"severity": "warning", "message": "no tests changed"}]}
    return {"findings": []}


@registry.action("review_complexity")
async def review_complexity(lines: list[str], ctx: StepContext) -> dict:
    """Deep nesting; a very large diff makes this reviewer give up (the parallel threshold
    lets the review pass without it)."""
    if len(lines) > 500:
        raise RuntimeError(f"diff too large to analyse ({len(lines)} lines)")
    deepest = max((len(line) - len(line.lstrip(" "))) // 4 for line in lines) if lines else 0
    ctx.logger.info("complexity_checked", deepest=deepest)
    if deepest >= 4:
        return {"findings": [{"severity": "warning", "message": f"nesting depth {deepest}"}]}
    return {"findings": []}


@registry.action("summarize_findings")
async def summarize_findings(reviews: dict) -> dict:
    """Count findings by severity across the reviewers that finished."""
    findings = [
        {**finding, "reviewer": name}
        for name, review in sorted(reviews.items())
        if isinstance(review, dict)
        for finding in review.get("findings", [])
    ]
    counts = {s: sum(f["severity"] == s for f in findings) for s in ("blocking", "warning", "info")}
    return {**counts, "reviewers": sorted(reviews), "findings": findings}


@registry.action("post_review")
async def post_review(event: str, summary: dict) -> dict:
    """Post the review (a code host's API in production)."""
    return {"event": event, "comments": len(summary["findings"])}
