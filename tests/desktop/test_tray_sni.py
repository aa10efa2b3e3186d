"""The real tray under a StatusNotifierItem host, as on KDE Plasma, GNOME (AppIndicator) or XFCE.

status-notifier-watcher + gtk-sni-tray-standalone (a real SNI host on the X display) + the app as
a subprocess against the emulator. The menu is read over com.canonical.dbusmenu as a host reads
it, and an action is picked in the host's own rendering of the menu with xdotool.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.desktop import click, key, require_desktop, stop_process, wait_for
from support.emulator import EmulatorHandle
from support.secret_service import name_owner_pid
from support.sni import ITEM_PATH, Bus, MenuNode, SniMenu, sni_host

pytestmark = pytest.mark.desktop

SNI = "org.kde.StatusNotifierItem"


def _own_live_names(emu: EmulatorHandle) -> set[str]:
    with emu.state.lock:
        return {
            str(t["name"])
            for t in emu.state.tasks.values()
            if t.get("status") in ("queued", "in_progress")
            and "interactive" in (t.get("system_tags") or [])
            and t.get("user") == emu.state.current_user_id
        }


def _name_a_ready_session(emu: EmulatorHandle, name: str) -> None:
    """Give a running session of ours that published its ports (it offers Connect) a name of its
    own (the seeded ones share "Interactive Session")."""
    with emu.state.lock:
        task = next(
            t
            for t in emu.state.tasks.values()
            if t.get("status") == "in_progress"
            and t.get("status_message") != "stopping"
            and t.get("user") == emu.state.current_user_id
            and (t.get("hyperparams") or {}).get("properties", {}).get("internal_ssh_port")
        )
        task["name"] = name


def test_sessions_lazy_submenus_and_quit_through_a_status_notifier_host(
    emulator_factory: Any, tmp_path: Path
) -> None:
    require_desktop()
    emu: EmulatorHandle = emulator_factory(sessions=8)
    _name_a_ready_session(emu, "sni-ready-session")
    names = _own_live_names(emu)
    config = emu.write_config(tmp_path / "clearml.conf")
    dump = tmp_path / "menu.txt"
    env = dict(os.environ, CLEARML_TRAY_TEST_MENU_DUMP=str(dump))
    env.pop("QT_QPA_PLATFORM", None)  # the real X server, not offscreen
    with sni_host() as panel:
        bus = Bus()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tray_app", "--debug", "--config-file", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "app-stderr.txt", "w"),  # noqa: SIM115
        )
        try:

            def registered() -> str | None:
                services = (item.split("/")[0] for item in bus.items())
                return next((s for s in services if name_owner_pid(s) == proc.pid), None)

            service = wait_for(registered, 30, "our item to register with the SNI watcher")
            assert isinstance(service, str)
            assert bus.prop(service, ITEM_PATH, SNI, "Status") == "Active"
            menu = SniMenu(bus, service, bus.prop(service, ITEM_PATH, SNI, "Menu"))

            def top_with_sessions() -> MenuNode | None:
                menu.about_to_show(0)  # the app builds its menu when a host is about to show it
                top = menu.layout(0, 1)
                labels = [c.label for c in top.children]
                # "● name · where · id8" and, after a tab, its figures
                shown = all(any(f" {n} (" in x or f" {n} · " in x for x in labels) for n in names)
                return top if shown else None

            top = wait_for(top_with_sessions, 60, "the session rows over dbusmenu")
            assert isinstance(top, MenuNode)
            labels = [c.label for c in top.children]
            assert "New session…" in labels and labels[-1] == "Quit"
            assert any(x.startswith("Last refreshed ") for x in labels)

            # A session's submenu is filled only when it is about to be shown.
            row = next(c for c in top.children if " sni-ready-session · " in c.label)
            assert row.is_submenu
            assert menu.layout(row.id).children == []
            menu.about_to_show(row.id)
            filled = wait_for(lambda: menu.layout(row.id).children, 10, "the submenu rows")
            rows = [c.label for c in filled]  # type: ignore[attr-defined]
            assert "Connect in VS Code" in rows and "Stop…" in rows
            assert any(x.startswith("CPU: ") for x in rows)
            assert any(x.startswith("Address: 127.") for x in rows)

            # Through the host: right-click our icon in its panel; in the menu it draws from
            # dbusmenu, pick the last row (Quit).
            dump.unlink(missing_ok=True)
            click(panel.x + 12, panel.y + panel.height // 2, button=3)
            wait_for(dump.exists, 15, "the host to open our menu (menu dump written)")
            key("Up")
            key("Return")
            assert proc.wait(30) == 0
            wait_for(lambda: registered() is None, 10, "our item to leave the watcher")
        finally:
            bus.close()
            if proc.poll() is None:
                stop_process(proc)  # type: ignore[arg-type]
