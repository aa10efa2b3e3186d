"""Never stale, never silent, as a user meets it on a real desktop.

The tray runs as its own process (Xvfb, trayer, dunst) against the emulator; the menu is opened
with a click on the docked icon and read from the rows it showed. A clearml.conf with a wrong
secret is fixed on disk and the tray lists the sessions without a restart; the server goes down
and the menu's first row says so within seconds, and a connected session's tunnel, lost for
more than ~30 s, posts one notice (and one when it is back); a launch (the real clearml-session)
cancelled from its notification leaves no row and its task is deleted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.desktop import Window, click, docked_icon, key, popup_open, screenshot, wait_for
from support.dunst import Dunst, running_dunst
from support.emulator import ClientEnv, EmulatorHandle, reachable_own_session

from tray_app.core.settings.presets import Preset
from tray_app.core.settings.settings import Settings, save_settings
from tray_app.core.tunnels.ssh_config import SshConfig

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(300)]


@dataclass
class Tray:
    proc: subprocess.Popen[str]
    icon: Window
    dumps: Path
    dunst: Dunst
    config: Path
    env: dict[str, str]

    def open_menu(self, shot: Path | None = None) -> str:
        """Click the docked icon; the rows of the menu that opened; then close it."""
        dump = self.dumps / "menu.txt"
        dump.unlink(missing_ok=True)
        click(*self.icon.center)
        wait_for(dump.exists, 15, "the menu to open (menu dump written)")
        text = dump.read_text(encoding="utf-8")
        if shot is not None:
            screenshot(shot)
        key("Escape")
        wait_for(lambda: not popup_open(), 10, "the menu to close")
        return text

    def menu_until(self, predicate: Callable[[str], bool], limit_s: float, what: str) -> str:
        seen: list[str] = []

        def look() -> bool:
            seen.append(self.open_menu())
            return predicate(seen[-1])

        wait_for(look, limit_s, what)
        return seen[-1]

    def click_button(self, label: str) -> None:
        """A real click on the open question's button `label`, where it is on the screen."""
        dump = self.dumps / "dialog.json"

        def button() -> dict[str, int] | None:
            try:
                rows = json.loads(dump.read_text())["buttons"]
            except (OSError, ValueError):
                return None
            return next((b for b in rows if b["label"] == label), None)

        found = wait_for(button, 30, f"the button “{label}” on screen")
        assert isinstance(found, dict)
        dump.unlink()
        click(found["x"] + found["width"] // 2, found["y"] + found["height"] // 2)


@pytest.fixture
def start_tray(
    panel: Window,
    clearml_client_env: Callable[[EmulatorHandle], ClientEnv],
    tmp_path: Path,
) -> Iterator[Callable[..., Tray]]:
    started: list[subprocess.Popen[str]] = []

    with running_dunst(tmp_path / "dunst") as dunst:

        def start(
            emu: EmulatorHandle, secret: str | None = None, presets: tuple[Preset, ...] = ()
        ) -> Tray:
            client_env = clearml_client_env(emu)
            if secret is not None:
                text = client_env.config.read_text()
                client_env.config.write_text(text.replace(emu.secret_key, secret))
            save_settings(Settings(open_editor_when_ready=False), list(presets))
            SshConfig().ensure_include()  # agreed on an earlier Connect
            env = dict(client_env.env)
            env.pop("QT_QPA_PLATFORM", None)  # the real X server
            env["CLEARML_TRAY_TEST_DIALOG_DUMP"] = str(tmp_path / "dialog.json")
            env["CLEARML_TRAY_TEST_MENU_DUMP"] = str(tmp_path / "menu.txt")
            proc = subprocess.Popen(
                [sys.executable, "-m", "tray_app", "--debug", "--config-file",
                 str(client_env.config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(tmp_path / "tray-stderr.txt", "w"),  # noqa: SIM115
                text=True,
            )  # fmt: skip
            started.append(proc)
            icon = wait_for(lambda: docked_icon(panel), 30, "the tray icon to dock")
            assert isinstance(icon, Window)
            return Tray(proc, icon, tmp_path, dunst, client_env.config, env)

        yield start
        for proc in started:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


class _NoticeLog:
    """Every notification dunst showed, in order: what is on screen is closed into dunst's
    history at each look (a notice replaced by a later one of its tag is seen before that)."""

    def __init__(self, dunst: Dunst) -> None:
        self.dunst = dunst
        self.summaries: list[str] = []
        self._ids: set[object] = set()

    def collect(self) -> bool:
        self.dunst.close_all()
        for notice in reversed(self.dunst.history()):  # oldest first
            if notice["id"] not in self._ids:
                self._ids.add(notice["id"])
                self.summaries.append(str(notice["summary"]))
        return True


def _own_live_names(emu: EmulatorHandle) -> set[str]:
    with emu.state.lock:
        return {
            str(t["name"])
            for t in emu.state.tasks.values()
            if t.get("status") in ("queued", "in_progress")
            and "interactive" in (t.get("system_tags") or [])
            and t.get("user") == emu.state.current_user_id
        }


@pytest.mark.timeout(540)
def test_a_fixed_clearml_conf_is_used_without_a_restart_and_an_outage_shows_at_once(
    start_tray: Callable[..., Tray],
    emulator_factory: Callable[..., EmulatorHandle],
    tmp_path: Path,
) -> None:
    emu = emulator_factory(sessions=4, agent_tick=0.5)  # with its sessions' SSH servers
    names = _own_live_names(emu)
    tray = start_tray(emu, secret="not-the-right-secret-0123456789")
    refused = tray.menu_until(
        lambda t: t.startswith("⚠ ClearML refused the keys"), 60, "the refused keys row"
    )
    assert "Enter ClearML keys…" in refused
    # Said where the user looks, with the button that fixes it.
    wait_for(
        lambda: (
            any(n["summary"] == "ClearML refused the keys" for n in tray.dunst.history())
            or tray.dunst.displayed() >= 1
        ),
        20,
        "the refused-keys notification",
    )
    screenshot(tmp_path / "follow-refused.png")

    # The user fixes clearml.conf in an editor: no Refresh, no restart.
    conf = tray.config
    assert "not-the-right-secret-0123456789" in conf.read_text()
    fixed = time.monotonic()
    conf.write_text(conf.read_text().replace("not-the-right-secret-0123456789", emu.secret_key))
    listed = tray.menu_until(
        lambda t: all(f" {n} · " in t for n in names), 15, "the sessions within 15 s"
    )
    assert "⚠" not in listed.splitlines()[0]
    print(f"sessions listed {time.monotonic() - fixed:.1f} s after the fix")

    # A connected session (`clearml-tray connect <short id>`, forwarded to the running tray).
    session = reachable_own_session(emu)
    short = session[:8]
    connect = subprocess.run(
        [sys.executable, "-m", "tray_app", "connect", short],
        env=tray.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert connect.returncode == 0, connect.stderr
    tray.menu_until(
        lambda t: any(short in line and line.rstrip().endswith("⇄") for line in t.splitlines()),
        120,
        "its tunnel up on its row",
    )
    seen = _NoticeLog(tray.dunst)
    wait_for(lambda: seen.collect() and "Session ready" in seen.summaries, 30, "its ready notice")
    before = len(seen.summaries)

    # The server goes down (its sessions' sshd with it): the menu's first row says so within
    # 5 s; the tunnel, lost for more than ~30 s, posts one notice, and one when it is back.
    emu.stop()
    down_at = time.monotonic()
    down = tray.menu_until(
        lambda t: t.startswith("⚠ Server unreachable"), 5, "the outage row within 5 s"
    )
    print(f"outage shown {time.monotonic() - down_at:.1f} s after the server stopped")
    tray.open_menu(tmp_path / "follow-outage.png")
    assert emu.url in down and "Retry now" in down
    assert all(f" {n} · " in down for n in names)  # the last data stays visible
    wait_for(lambda: seen.collect() and "Session unreachable" in seen.summaries, 90, "the notice")
    assert time.monotonic() - down_at >= 30.0
    time.sleep(max(0.0, 40.0 - (time.monotonic() - down_at)))  # an outage longer than that

    emu.start()
    back = tray.menu_until(lambda t: not t.startswith("⚠"), 90, "recovery")
    assert all(f" {n} · " in back for n in names)
    wait_for(lambda: seen.collect() and "Session reachable again" in seen.summaries, 180, "its end")
    # Nothing else was said about it in between (no "connection lost", no second notice).
    assert seen.summaries[before:] == ["Session unreachable", "Session reachable again"], (
        seen.summaries
    )
    assert tray.proc.poll() is None


def test_cancel_on_a_launch_deletes_its_task_and_leaves_no_row(
    start_tray: Callable[..., Tray],
    emulator_factory: Callable[..., EmulatorHandle],
    tmp_path: Path,
) -> None:
    # No session yet, and no SSH endpoints: the launch stays on its way until it is cancelled.
    emu = emulator_factory(sessions=0, agent_tick=0.5, ssh_endpoints=False)
    tray = start_tray(emu, presets=(Preset(name="cpu box", queue="sessions", project="DevOps"),))
    first = tray.menu_until(lambda t: "No live sessions" in t, 60, "the empty list")
    assert "Launch “cpu box”" in first
    # Presets → Launch “cpu box”, with the keyboard, as in any menu.
    tray.dumps.joinpath("menu.txt").unlink(missing_ok=True)
    click(*tray.icon.center)
    wait_for(tray.dumps.joinpath("menu.txt").exists, 15, "the menu")
    key("Down")  # New session…
    key("Down")  # Presets
    key("Right")  # its first row: Launch “cpu box”
    key("Return")

    def task() -> dict[str, object] | None:
        with emu.state.lock:
            return next(
                (dict(t) for t in emu.state.tasks.values() if t.get("name") == "cpu box"), None
            )

    created = wait_for(task, 120, "the CLI to create the session, named after the preset")
    assert isinstance(created, dict)
    wait_for(
        lambda: (
            any(n["summary"] == "Starting a session" for n in tray.dunst.history())
            or tray.dunst.displayed() >= 1
        ),
        30,
        "the launch notice",
    )
    # Its row: the launch's own, or the session's once a refresh lists it.
    during = tray.menu_until(lambda t: str(created["id"])[:8] in t, 60, "the launch's row")
    assert "cpu box" in during
    menu = tray.dunst.press("Cancel")  # the "Starting a session" notice's button
    assert any("Cancel" in line for line in menu)
    tray.click_button("Delete the session")

    def deleted() -> bool:
        with emu.state.lock:
            return str(created["id"]) not in emu.state.tasks

    wait_for(deleted, 60, "the cancelled launch's task to be deleted")
    after = tray.menu_until(
        lambda t: "cpu box" not in t.split("---\nNew session…")[0], 30, "no row for it"
    )
    assert "No live sessions" in after
    tray.open_menu(tmp_path / "follow-cancelled.png")
    tray.dunst.close_all()  # what is on screen goes to the history
    shown = [n["summary"] for n in tray.dunst.history()]
    # "Starting a session" gave way to "Launch cancelled" (its tag): no progress notice stays.
    assert shown[0] == "Launch cancelled", shown
    assert "Starting a session" not in shown[:1]
