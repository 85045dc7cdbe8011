"""The README's first hour: its tour runs as pasted, its Python snippet runs as a script, and
no link in the documentation leaves the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/*/README.md")]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _block(heading: str, language: str) -> str:
    """The first fenced `language` block after `heading`."""
    rest = README[README.index(heading) :]
    match = re.search(rf"```{language}\n(.*?)```", rest, flags=re.S)
    assert match, f"no {language} block after {heading}"
    return match.group(1)


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_no_link_leaves_the_repository(doc: Path) -> None:
    """Every link is relative and names a file or folder inside the repository."""
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        assert "://" not in target, f"{doc.name} links outside: {target}"
        path = (doc.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
        assert path.exists(), f"{doc.name} links to a missing file: {target}"


def test_the_tour_runs_as_pasted(tmp_path: Path) -> None:
    """The command-line tour, pasted into a shell after the set-up command, succeeds."""
    script = _block("### 2. The command line", "bash")
    assert script.startswith("source .venv/bin/activate\n")
    bindir = Path(sys.executable).parent
    # `source .venv/bin/activate` puts the venv's scripts first on PATH; so does this
    script = script.replace("source .venv/bin/activate", f"export PATH={bindir}:$PATH", 1)
    proc = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=ROOT,
        env={
            **os.environ,
            "ORCHESTRATOR_DB": f"sqlite:///{tmp_path / 'tour.sqlite'}",
            "LANGGRAPH_STRICT_MSGPACK": "true",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "started    classify (sequential)" in proc.stdout
    assert '"status": "completed"' in proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_python_snippet_runs_as_a_script(tmp_path: Path) -> None:
    """The tour's Python example, saved as a file and run with `python`, completes."""
    (tmp_path / "loan.py").write_text(_block("### 3. From Python", "python"), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "loan.py"],
        cwd=tmp_path,
        env={**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "completed {'applicant_id': 'A-1', 'score': 710}" in proc.stdout
    assert "step_completed check" in proc.stdout
