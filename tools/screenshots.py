"""Take the README's screenshots from the running demo, so that they stay current.

Run it under a throwaway X server and session bus (it starts its own tray host, trayer, and
notification daemon, dunst; the tray runs against the built-in demo server on a fresh HOME):

    xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \\
        .venv/bin/python tools/screenshots.py docs/screenshots

It writes notification.png, menu.png, session.png, new-session.png, settings.png, keys.png and
outage.png (the menu while the demo server is stopped). The ready
notification is the real one: the script runs `clearml-tray connect <short id>` against the
demo tray for one of its running sessions, the real `clearml-session --attach` builds the tunnel
to the demo's SSH endpoint, and dunst shows what the tray posts when it is up. A stand-in `code`
(first on PATH) takes the editor's start, and the ssh Include line counts as accepted earlier,
so no question comes up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TRAY_HEIGHT = 32
# dunst draws at the top right, below the tray panel; the notification shot is that corner.
NOTE_WIDTH, NOTE_TOP = 380, TRAY_HEIGHT + 8
DUNSTRC = f"""[global]
    origin = top-right
    offset = 10x{NOTE_TOP}
    width = {NOTE_WIDTH - 20}
    show_indicators = no
    max_icon_size = 48
    font = Sans 10
    frame_width = 1
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[urgency_critical]
    timeout = 0
"""


def _fresh_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="clearml-tray-shots-"))
    os.environ["HOME"] = str(home)
    for name, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_STATE_HOME", ".local/state"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_RUNTIME_DIR", "run"),
    ):
        path = home / sub
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ[name] = str(path)
    return home


# Answers like VS Code with the Remote-SSH extension; opens nothing.
STAND_IN_CODE = """#!{python}
import sys
if sys.argv[1:] == ["--list-extensions"]:
    print("ms-vscode-remote.remote-ssh")
"""


def _stand_in_editor(home: Path) -> None:
    bin_dir = home / "bin"
    bin_dir.mkdir(exist_ok=True)
    code = bin_dir / "code"
    code.write_text(STAND_IN_CODE.format(python=sys.executable))
    code.chmod(0o755)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


async def _dunstctl(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "dunstctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await proc.communicate()
    return out.decode()


def _keyring(quiet: dict[str, int]) -> subprocess.Popen[bytes]:
    """An unlocked login keyring in the throwaway HOME, as a desktop session has.

    Connect keeps the session's password in the system keyring; without one, D-Bus would start
    gnome-keyring on demand, which waits for someone to answer its "create a keyring" prompt.
    """
    proc = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--components=secrets", "--unlock"],
        stdin=subprocess.PIPE,
        **quiet,
    )
    assert proc.stdin is not None
    proc.stdin.write(secrets.token_hex(16).encode())  # --unlock reads it, as PAM hands it over
    proc.stdin.close()
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.SecretService.Keyring"
    deadline = time.monotonic() + 10
    while "boolean true" not in subprocess.run(
        [
            "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.secrets",
        ],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout:  # fmt: skip
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            sys.exit("screenshots: gnome-keyring-daemon did not start")
        time.sleep(0.1)
    return proc


def _helpers(home: Path) -> list[subprocess.Popen[bytes]]:
    for tool in ("trayer", "dunst", "gnome-keyring-daemon", "dbus-send"):
        if shutil.which(tool) is None:
            sys.exit(
                f"screenshots: `{tool}` is needed (apt-get install trayer dunst gnome-keyring)"
            )
    rc = home / "dunstrc"
    rc.write_text(DUNSTRC)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    trayer = subprocess.Popen(
        [
            "trayer",
            "--edge", "top", "--align", "right", "--widthtype", "pixel", "--width", "240",
            "--heighttype", "pixel", "--height", str(TRAY_HEIGHT), "--transparent", "false",
        ],
        **quiet,
    )  # fmt: skip
    dunst = subprocess.Popen(["dunst", "-config", str(rc)], **quiet)
    keyring = _keyring(quiet)
    time.sleep(1.0)  # both map their windows and take their D-Bus/X selections
    return [trayer, dunst, keyring]


async def _until(predicate: Callable[[], object], what: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _shoot(out: Path) -> None:
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QMenu, QWidget

    from tray_app.app import TrayApplication
    from tray_app.core.server.models import SessionState
    from tray_app.core.tunnels.model import TunnelState
    from tray_app.core.tunnels.ssh_config import SshConfig
    from tray_app.qt.single_instance import SingleInstance

    screen = QGuiApplication.primaryScreen()

    def grab(rect: QRect, name: str) -> None:
        shot = screen.grabWindow(0, rect.x(), rect.y(), rect.width(), rect.height())
        shot.save(str(out / name))
        print(f"wrote {out / name} ({rect.width()}×{rect.height()})")

    def grab_widget(widget: QWidget, name: str) -> None:
        widget.grab().save(str(out / name))
        print(f"wrote {out / name}")

    args = argparse.Namespace(config_file=None, demo=True, show=False, debug=False, command=None)
    app = TrayApplication(args)
    # As `clearml-tray` runs it: a second `clearml-tray connect` hands its request to this one.
    instance = SingleInstance(app.requests.handle)
    instance.listen()
    ready: list[object] = []

    def tunnels_changed() -> None:
        for info in app.tunnels.tunnels().values():
            if info.state == TunnelState.READY and not info.prewarmed and info not in ready:
                ready.append(info)
                print(
                    f"tunnel up: {info.ssh_host_alias} on localhost:{info.local_ssh_port} "
                    f"({info.label})"
                )

    app.tunnel_signals.tunnels_changed.connect(tunnels_changed)
    # A user who agreed to the Include line on an earlier connect: no question on this one.
    await asyncio.to_thread(SshConfig().ensure_include)
    await app.start()
    await _until(lambda: app.poller.snapshot is not None, "the demo's sessions")
    await _until(lambda: app.tray.icon.geometry().isValid(), "the icon to dock")
    await asyncio.sleep(1.0)

    # The real ready notification first: Connect on a running session, as `clearml-tray
    # connect` from a terminal asks the running tray, alone on screen.
    await _dunstctl("close-all")

    def running() -> Any:
        snapshot = app.poller.snapshot
        own = snapshot.own if snapshot is not None else []
        return next(
            (s for s in own if s.state == SessionState.RUNNING and s.ssh_port is not None), None
        )

    await _until(running, "a running demo session with its SSH endpoint", 90)
    session = running()
    connect = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tray_app", "connect", session.id[:8],
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        said, _ = await asyncio.wait_for(connect.communicate(), 60)
    except TimeoutError:
        connect.kill()
        await connect.wait()
        raise SystemExit("screenshots: `clearml-tray connect` got no answer in 60 s") from None
    if connect.returncode != 0:
        raise SystemExit(f"screenshots: `clearml-tray connect` failed: {said.decode()}")
    await _until(lambda: ready, "the tunnel to come up", 120)
    await app.notifier.wait_sent()
    await asyncio.sleep(1.5)  # dunst draws it
    width = screen.geometry().width()
    grab(QRect(width - NOTE_WIDTH, NOTE_TOP - 4, NOTE_WIDTH, 96), "notification.png")
    # What was on screen goes to dunst's history: it must be the tray's "Session ready".
    await _dunstctl("close-all")
    history = json.loads(await _dunstctl("history"))["data"][0]
    shown = [item["summary"]["data"] for item in history]
    if shown[:1] != ["Session ready"]:
        raise SystemExit(f"screenshots: expected the ready notification on screen, got {shown}")

    # The menu, opened from the icon: the connected session's row carries its tunnel's mark.
    menu = app.tray.menu

    async def open_menu() -> None:
        app.tray.popup()
        await _until(menu.isVisible, "the menu")
        await asyncio.sleep(0.8)  # the check it makes when it opens, and the rows that follow

    await open_menu()
    icon = app.tray.icon.geometry()
    grab(menu.geometry().united(icon).adjusted(-8, 0, 8, 8), "menu.png")

    # The connected session's submenu, opened beside the menu: its tunnel in one group.
    row = next(a for a in menu.actions() if a.menu() is not None and session.short_id in a.text())
    sub = row.menu()
    assert isinstance(sub, QMenu)
    sub.aboutToShow.emit()  # filled when it opens, as Qt does on hover
    menu.setActiveAction(row)
    top = menu.geometry().top() + menu.actionGeometry(row).top()
    sub.popup(QPoint(menu.geometry().left() - sub.sizeHint().width(), top))
    await _until(sub.isVisible, "the session submenu")
    await asyncio.sleep(0.5)
    grab(menu.geometry().united(sub.geometry()).adjusted(-8, 0, 8, 8), "session.png")
    sub.hide()
    menu.hide()

    # New session, with the queue list loaded.
    app.controller.handle("new_session")
    await _until(lambda: app.windows.new_session_dialog is not None, "the New session dialog")
    dialog = app.windows.new_session_dialog
    await _until(lambda: bool(dialog.queues), "the queue list")
    dialog.packages.setText("torch numpy")
    await asyncio.sleep(0.5)
    grab_widget(dialog, "new-session.png")
    dialog.close()

    # Settings.
    before = set(app.windows._open)
    app.controller.handle("settings")
    await _until(lambda: set(app.windows._open) - before, "the Settings window")
    (settings,) = set(app.windows._open) - before
    await asyncio.sleep(0.5)
    grab_widget(settings, "settings.png")
    settings.close()

    # The ClearML keys dialog, as "Enter ClearML keys…" opens it.
    app.controller.handle("credentials")
    await _until(lambda: app.windows.credentials_dialog is not None, "the keys dialog")
    keys = app.windows.credentials_dialog
    await asyncio.sleep(0.5)
    grab_widget(keys, "keys.png")
    keys.close()

    # The server goes away: the menu says so in its first rows, the last sessions stay.
    demo = app.source.demo
    assert demo is not None
    await asyncio.to_thread(demo.stop)
    await open_menu()
    await _until(lambda: app.poller.status.state.value == "offline", "the outage in the menu")
    await asyncio.sleep(0.5)
    grab(menu.geometry().united(app.tray.icon.geometry()).adjusted(-8, 0, 8, 8), "outage.png")
    menu.hide()
    await asyncio.to_thread(demo.start)

    await app.quit(shutdown_remote=False)
    instance.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="docs/screenshots", type=Path)
    ns = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        print("screenshots: run under `xvfb-run -a dbus-run-session -- …`", file=sys.stderr)
        return 2
    out = ns.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    home = _fresh_home()
    _stand_in_editor(home)
    helpers = _helpers(home)
    try:
        import qasync
        from PySide6.QtWidgets import QApplication

        qapp = QApplication(sys.argv[:1])
        qapp.setQuitOnLastWindowClosed(False)
        loop = qasync.QEventLoop(qapp)
        asyncio.set_event_loop(loop)
        with loop:
            loop.run_until_complete(_shoot(out))
    finally:
        for proc in helpers:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
