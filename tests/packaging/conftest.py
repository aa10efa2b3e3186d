"""The Linux package, built once per run and shared by the packaging tests.

`.ci/run` builds it before pytest starts (installers/linux/build_deb.sh) and names it in
CLEARML_TRAY_DEB; run alone, the first test that needs it builds it here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEB_ENV = "CLEARML_TRAY_DEB"


@pytest.fixture(scope="session")
def deb() -> Path:
    for tool in ("dpkg-deb", "dpkg"):
        if shutil.which(tool) is None:
            pytest.skip(f"building the .deb needs `{tool}` (Debian/Ubuntu)")
    built = os.environ.get(DEB_ENV, "")
    if built and Path(built).is_file():
        return Path(built)
    env = dict(os.environ, PYTHON=sys.executable)
    result = subprocess.run(
        ["bash", "installers/linux/build_deb.sh"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    path = REPO / result.stdout.strip().splitlines()[-1]
    assert path.is_file()
    return path


@pytest.fixture(scope="session")
def extracted(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's files unpacked (dpkg-deb -x): its /opt/clearml-tray/clearml-tray."""
    root = tmp_path_factory.mktemp("deb-files")
    assert subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], timeout=300).returncode == 0
    program = root / "opt" / "clearml-tray" / "clearml-tray"
    assert program.is_file()
    return program
