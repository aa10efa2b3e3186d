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
    # A runtime dir of its own: a tray the user already runs answers `list` through the usual
    # one, and then the script rightly does not ask for the demo.
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700)
    env = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
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


def test_no_extra_of_the_quick_start_venv_brings_a_test_only_keyring_backend() -> None:
    """The quick start's venv is the one `.ci/run` installs the test extra into: a keyring
    backend installed there (keyrings.alt's plaintext file) would be offered to the app the user
    runs from it. The tests keep theirs in the tree (tests/support/file_keyring.py)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        wanted += extra
    names = [req.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip()
             for req in wanted]  # fmt: skip
    assert not [n for n in names if n.lower().startswith("keyrings")], names
    script = SCRIPT.read_text()
    assert "pip install -q -e '.[demo]'" in script  # the app's own extras only
