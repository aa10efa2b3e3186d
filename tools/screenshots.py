"""Take the README's screenshots from the running demo, so that they stay current.

Run it under a throwaway X server and session bus (it starts its own tray host, trayer, and
notification daemon, dunst; the tray runs against the built-in demo server on a fresh HOME):

    xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \\
        .venv/bin/python tools/screenshots.py docs/screenshots

It writes menu.png, session.png, new-session.png, notification.png and settings.png. The ready
notification is the one the launcher posts when a tunnel comes up (same kind, title, buttons and
icon), sent directly: the demo serves no SSH endpoint for a real tunnel here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


def _helpers(home: Path) -> list[subprocess.Popen[bytes]]:
    for tool in ("trayer", "dunst"):
        if shutil.which(tool) is None:
            sys.exit(f"screenshots: `{tool}` is needed (apt-get install trayer dunst)")
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
    time.sleep(1.0)  # both map their windows and take their D-Bus/X selections
    return [trayer, dunst]


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
    await app.start()
    await _until(lambda: app.poller.snapshot is not None, "the demo's sessions")
    await _until(lambda: app.tray.icon.geometry().isValid(), "the icon to dock")
    await asyncio.sleep(1.0)

    # The menu, opened from the icon.
    menu = app.tray.menu
    app.tray.popup()
    await _until(menu.isVisible, "the menu")
    await asyncio.sleep(0.5)
    icon = app.tray.icon.geometry()
    grab(menu.geometry().united(icon).adjusted(-8, 0, 8, 8), "menu.png")

    # A session's submenu (the first session row), opened beside the menu.
    row = next(a for a in menu.actions() if a.menu() is not None)
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

    # The notification a ready session posts (see the module docstring), alone on screen.
    closing = await asyncio.create_subprocess_exec("dunstctl", "close-all")
    await closing.wait()
    session = app.poller.snapshot.own[0] if app.poller.snapshot.own else None
    name = f"{session.name} ({session.id[:8]})" if session else "Interactive Session"
    buttons = [(label, lambda: None) for label in ("Open in VS Code", "Copy SSH command")]
    app.notifier.notify("session_ready", "Session ready", f"{name} is connected.", buttons)
    await app.notifier.wait_sent()
    await asyncio.sleep(1.5)
    width = screen.geometry().width()
    grab(QRect(width - NOTE_WIDTH, NOTE_TOP - 4, NOTE_WIDTH, 96), "notification.png")

    await app.quit()


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
