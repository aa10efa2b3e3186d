"""`clearml-tray self-test`: check an installed bundle without a display or a server.

Loads the core, renders the tray icons with Qt offscreen (proves the Qt libraries and the SVG
plugin are bundled), parses a clearml.conf and round-trips settings in a temporary folder,
loads the clearml-session CLI a Connect runs (bundled in a package) and lists the keyring
backends keyring can find (a bundle must carry them and their entry points).
Prints one line per check and "self-test ok" at the end; exit code 1 names the failed check.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path


def _core() -> str:
    from tray_app.core.server import sessions  # noqa: F401

    return "core modules import"


def _qt_icons() -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    from tray_app.qt.icons import STATES, icons_dir, state_icon

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    if icons_dir() is None:
        raise RuntimeError("the icons are not bundled")
    for state in STATES:
        pixmap = state_icon(state).pixmap(32, 32)
        if pixmap.isNull():
            raise RuntimeError(f"the {state} icon does not render")
    del app
    return f"Qt {QGuiApplication.platformName() or 'offscreen'} renders {len(STATES)} icons"


def _config_and_settings() -> str:
    from tray_app.core.server.config import load_server_config
    from tray_app.core.settings.settings import Settings, load_settings, save_settings

    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "clearml.conf"
        conf.write_text(
            "api { api_server: http://127.0.0.1:8008\n"
            ' credentials { access_key: "selftest", secret_key: "selftest-secret" } }\n'
        )
        config = load_server_config(conf, env={"HOME": tmp})
        if config.web_server != "http://127.0.0.1:8080":
            raise RuntimeError(f"unexpected web server {config.web_server}")
        path = Path(tmp) / "settings.json"
        save_settings(Settings(poll_interval_s=42), [], path)
        if load_settings(path).settings.poll_interval_s != 42:
            raise RuntimeError("settings did not round-trip")
    return "clearml.conf and settings round-trip"


def _clearml_session() -> str:
    import clearml_session.__main__ as cli  # noqa: F401  (the SDK comes with it)
    from clearml_session.version import __version__ as version

    from tray_app.core.tunnels.environment import bundled_command

    where = "bundled" if bundled_command() else "installed"
    return f"clearml-session {version} ({where}) loads"


def _keyring_backends() -> str:
    import keyring.backend

    names = sorted(
        f"{type(b).__module__}.{type(b).__qualname__}" for b in keyring.backend.get_all_keyring()
    )
    return "keyring backends: " + ", ".join(names)


CHECKS: list[Callable[[], str]] = [
    _core,
    _qt_icons,
    _config_and_settings,
    _clearml_session,
    _keyring_backends,
]


def run_selftest() -> int:
    for check in CHECKS:
        try:
            print(f"ok: {check()}")
        except Exception as exc:
            print(f"FAILED: {check.__name__.strip('_')}: {exc}")
            traceback.print_exc()
            return 1
    print("self-test ok")
    return 0
