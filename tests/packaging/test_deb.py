"""The Linux package: built from the work tree, installed, and run from the installed bundle.

The package is built once per run (tests/packaging/conftest.py; `.ci/run` builds it before the
tests), inspected, installed with dpkg when running as root (CI) — otherwise extracted with
dpkg-deb — and `clearml-tray --version`, `clearml-tray self-test` and `clearml-tray list --json`
against the emulator run from the installed bundle. What a Connect needs is in it: the bundled
clearml-session and the askpass helper are entries of its one executable.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.emulator import EmulatorHandle

import tray_app

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, **kw)  # type: ignore[call-overload,no-any-return]


@pytest.fixture(scope="module")
def installed(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The installed `clearml-tray` command (dpkg -i as root, else an extracted tree)."""
    if os.geteuid() == 0:
        result = _run(["dpkg", "-i", str(deb)])
        assert result.returncode == 0, result.stderr
        try:
            yield Path("/usr/bin/clearml-tray")
        finally:
            removed = _run(["dpkg", "-r", "clearml-tray"])
            assert removed.returncode == 0, removed.stderr
            assert not Path("/opt/clearml-tray").exists()
    else:
        print("not root: extracting the package instead of installing it")
        root = tmp_path_factory.mktemp("deb-root")
        assert _run(["dpkg-deb", "-x", str(deb), str(root)]).returncode == 0
        yield root / "opt" / "clearml-tray" / "clearml-tray"


def test_package_metadata_and_contents(deb: Path) -> None:
    info = _run(["dpkg-deb", "--info", str(deb)]).stdout
    assert "Package: clearml-tray" in info
    assert f"Version: {tray_app.__version__}" in info
    assert "Depends: libxcb-cursor0" in info
    contents = _run(["dpkg-deb", "--contents", str(deb)]).stdout
    for path in (
        "./opt/clearml-tray/clearml-tray",
        "./usr/bin/clearml-tray -> /opt/clearml-tray/clearml-tray",
        "./usr/share/applications/clearml-tray.desktop",
        "./usr/share/icons/hicolor/48x48/apps/clearml-tray.png",
        "./usr/share/icons/hicolor/scalable/apps/clearml-tray.svg",
        "resources/icons/clearml-tray-ok.svg",
        "platforms/libqxcb.so",
    ):
        assert path in contents, path


def test_installed_bundle_runs(installed: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # headless on purpose
    version = _run([str(installed), "--version"], env=env)
    assert (
        version.returncode == 0 and version.stdout.strip() == f"clearml-tray {tray_app.__version__}"
    )
    selftest = _run([str(installed), "self-test"], env=env)
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    assert selftest.stdout.strip().endswith("self-test ok")
    assert "ok: clearml-session 0.17.0 (bundled) loads" in selftest.stdout
    # The hidden entries a Connect runs: the CLI itself and the askpass helper.
    cli = _run([str(installed), "_clearml-session", "--version"], env=env)
    assert cli.returncode == 0 and "Version 0.17.0" in cli.stdout, cli.stdout + cli.stderr
    askpass = _run([str(installed), "_askpass", "root@127.0.0.1's password: "], env=env)
    assert (askpass.returncode, askpass.stdout) == (1, "")
    assert "no session password was handed to this ssh" in askpass.stderr


def test_installed_bundle_talks_to_a_server(
    installed: Path, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    conf = emulator.write_config(tmp_path / "clearml.conf")
    result = _run([str(installed), "--config-file", str(conf), "list", "--json"])
    assert result.returncode == 0, result.stderr
    listed = {s["id"] for s in json.loads(result.stdout)["sessions"]}
    with emulator.state.lock:
        expected = {
            t["id"]
            for t in emulator.state.tasks.values()
            if t["status"] in ("queued", "in_progress")
            and "interactive" in (t.get("system_tags") or [])
            and t["user"] == emulator.state.current_user_id
        }
    assert listed == expected
