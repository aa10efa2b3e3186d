"""installers/quickstart.sh picks the demo server exactly when there is no ClearML configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tray_app.demo import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, clearml_conf_text

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "installers" / "quickstart.sh"


def _dry_run(home: Path) -> str:
    env = {
        "HOME": str(home),
        "PATH": os.environ["PATH"],
        "VENV": sys.prefix,  # the venv running the tests already has the package installed
        "QUICKSTART_SKIP_APT": "1",
        "QUICKSTART_SKIP_INSTALL": "1",
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_no_configuration_starts_the_demo(tmp_path: Path) -> None:
    command = _dry_run(tmp_path)
    assert command == f"{sys.prefix}/bin/clearml-tray --demo"


def test_existing_configuration_starts_the_tray_on_it(tmp_path: Path) -> None:
    # A configured but unreachable server (nothing listens on 127.0.0.1:9) still is a configuration.
    (tmp_path / "clearml.conf").write_text(
        clearml_conf_text("http://127.0.0.1:9", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
    )
    command = _dry_run(tmp_path)
    assert command == f"{sys.prefix}/bin/clearml-tray"


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option --bogus" in proc.stderr
