"""The first "Connect in VS Code" on a fresh home, as a new user meets it, on a real desktop.

The tray runs as its own process (Xvfb, trayer, dunst) against the emulator with its agent and
SSH endpoints; the real `clearml-session --attach` builds the tunnel. The first connect asks
before it adds the Include line to ~/.ssh/config: the test answers the real dialog with the
keyboard (xdotool) while refreshes fall due, then checks that the tray kept refreshing, told
the user the session is ready, opened the editor, and that SIGTERM — or SIGKILL — leaves
nothing of it running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.desktop import Window, click, docked_icon, key, screenshot, wait_for, windows
from support.dunst import running_dunst
from support.emulator import ClientEnv, EmulatorHandle, reachable_own_session
from support.secret_service import SecretService

from tray_app.core.settings.settings import Settings, save_settings
from tray_app.core.tunnels.ssh_config import SshConfig

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(300)]


def _tree(pid: int) -> set[int]:
    """`pid` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return "(gone)"


def _ours_by_command(home: Path) -> set[int]:
    """ssh masters and clearml-session children that name this test's home or aliases."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        text = b" ".join(argv)
        if (b"clearml-session" in text or b"ControlMaster=yes" in text) and str(
            home
        ).encode() in environ:
            found.add(int(entry.name))
    return found


@dataclass
class Tray:
    proc: subprocess.Popen[str]
    icon: Window
    home: Path
    editor_calls: Path
    env: dict[str, str]
    dumps: Path  # where the tray writes the open question's buttons and the menu's rows

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

    def quit_from_menu(self) -> None:
        """Open the menu with a click on the icon; Up selects its last row, Quit."""
        menu = self.dumps / "menu.txt"
        menu.unlink(missing_ok=True)
        click(*self.icon.center)
        wait_for(menu.exists, 15, "the menu to open")
        assert menu.read_text().rstrip().splitlines()[-1] == "Quit"
        key("Up")
        key("Return")

    def editor_invocations(self) -> list[list[str]]:
        if not self.editor_calls.exists():
            return []
        return [json.loads(line) for line in self.editor_calls.read_text().splitlines()]

    def second_start(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tray_app", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def tray_on_emulator(
    panel: Window,
    emulator_factory: Callable[..., EmulatorHandle],
    clearml_client_env: Callable[[EmulatorHandle], ClientEnv],
    tmp_path: Path,
) -> Iterator[Callable[[EmulatorHandle], Tray]]:
    started: list[subprocess.Popen[str]] = []

    def start(emu: EmulatorHandle) -> Tray:
        client_env = clearml_client_env(emu)
        home = client_env.home
        # A refresh falls due every 5 s (the shortest interval), also while a question is open.
        save_settings(Settings(poll_interval_s=5, open_editor_when_ready=True), [])
        calls = tmp_path / "code-calls.jsonl"
        stand_in = tmp_path / "bin" / "code"
        stand_in.parent.mkdir(exist_ok=True)
        stand_in.write_text(
            f"#!{sys.executable}\nimport json, sys\n"
            f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
            "if sys.argv[1:] == ['--list-extensions']:\n"
            "    print('ms-vscode-remote.remote-ssh')\n"
        )
        stand_in.chmod(0o755)
        env = dict(client_env.env)
        env["PATH"] = f"{stand_in.parent}{os.pathsep}{env['PATH']}"
        env.pop("QT_QPA_PLATFORM", None)  # the real X server
        env["CLEARML_TRAY_TEST_DIALOG_DUMP"] = str(tmp_path / "dialog.json")
        env["CLEARML_TRAY_TEST_MENU_DUMP"] = str(tmp_path / "menu.txt")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tray_app", "--debug", "--config-file", str(client_env.config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "tray-stderr.txt", "w"),  # noqa: SIM115
            text=True,
        )
        started.append(proc)
        icon = wait_for(lambda: docked_icon(panel), 30, "the tray icon to dock")
        assert isinstance(icon, Window)
        return Tray(proc, icon, home, calls, env, tmp_path)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _files_holding(root: Path, secret: str) -> list[Path]:
    """Every regular file under `root` whose bytes contain `secret`."""
    needle = secret.encode()
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(path)
        except OSError:
            continue
    return found


def _requests(emu: EmulatorHandle, endpoint: str) -> int:
    return emu.state.count_requests(endpoint)


def test_first_connect_asks_without_wedging_then_quit_leaves_nothing(
    tray_on_emulator: Callable[[EmulatorHandle], Tray],
    emulator_factory: Callable[..., EmulatorHandle],
    tmp_path: Path,
) -> None:
    emu = emulator_factory(sessions=3, agent_tick=0.3)
    with running_dunst(tmp_path / "dunst") as dunst:
        tray = tray_on_emulator(emu)
        session_id = reachable_own_session(emu)
        wait_for(lambda: _requests(emu, "tasks.get_all_ex") >= 1, 30, "the first refresh")

        # `clearml-tray connect` with the short id that `list` prints.
        forwarded = tray.second_start("connect", session_id[:8])
        assert forwarded.returncode == 0, forwarded.stderr
        assert "Connecting to" in forwarded.stdout

        def question() -> Window | None:
            return _question_titled("Let VS Code reach your ClearML sessions")

        dialog = wait_for(question, 120, "the Include question")
        assert isinstance(dialog, Window)
        before = _requests(emu, "tasks.get_all_ex")
        wait_for(
            lambda: _requests(emu, "tasks.get_all_ex") > before,
            30,
            "a refresh while the question is open",
        )
        screenshot(tmp_path / "first-connect-question.png")
        assert not (tray.home / ".ssh" / "config").exists()  # nothing before the answer
        tray.click_button("Add the line")
        wait_for(lambda: question() is None, 20, "the question to close")

        user_config = tray.home / ".ssh" / "config"
        wait_for(user_config.exists, 30, "the Include line")
        assert "Include ~/.ssh/clearml-tray/config" in user_config.read_text()
        wait_for(
            lambda: any(call[:1] == ["--new-window"] for call in tray.editor_invocations()),
            60,
            "the editor to open on the session",
        )
        alias = f"clearml-{session_id[:8]}"
        assert [c for c in tray.editor_invocations() if c[:1] == ["--new-window"]] == [
            ["--new-window", f"--folder-uri=vscode-remote://ssh-remote+{alias}/root"]
        ]
        wait_for(
            lambda: (
                any(e.get("summary") == "Session ready" for e in dunst.history())
                or dunst.displayed() >= 1
            ),
            30,
            "the ready notification",
        )
        after = _requests(emu, "tasks.get_all_ex")
        wait_for(
            lambda: _requests(emu, "tasks.get_all_ex") > after, 30, "refreshes after the answer"
        )

        tree = _tree(tray.proc.pid) | _ours_by_command(tray.home)
        assert len(tree) > 1  # clearml-session and its ssh run
        # Quit from the menu: a tunnel is open, so it asks; the remote session keeps running.
        tray.quit_from_menu()
        wait_for(lambda: _question_titled("Quit ClearML Session Tray"), 20, "the Quit question")
        screenshot(tmp_path / "first-connect-quit-question.png")
        tray.click_button("Keep the session running")
        assert tray.proc.wait(20) == 0
        wait_for(lambda: not _alive(tree), 10, "every child of the tray to end")
        assert alias not in (tray.home / ".ssh" / "clearml-tray" / "config").read_text()
        with emu.state.lock:
            assert emu.state.tasks[session_id]["status"] == "in_progress"


def _question_titled(title: str) -> Window | None:
    return next((w for w in windows() if w.name.startswith(title)), None)


def test_sigterm_during_the_first_connect_question_quits_at_once(
    tray_on_emulator: Callable[[EmulatorHandle], Tray],
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    """A logout while the Include question is open: the tray ends within seconds, its child too,
    and ~/.ssh/config is untouched."""
    emu = emulator_factory(sessions=3, agent_tick=0.3)
    tray = tray_on_emulator(emu)
    session_id = reachable_own_session(emu)
    wait_for(lambda: _requests(emu, "tasks.get_all_ex") >= 1, 30, "the first refresh")
    assert tray.second_start("connect", session_id[:8]).returncode == 0
    wait_for(
        lambda: _question_titled("Let VS Code reach your ClearML sessions"),
        120,
        "the Include question",
    )
    tree = _tree(tray.proc.pid) | _ours_by_command(tray.home)
    tray.proc.send_signal(signal.SIGTERM)
    assert tray.proc.wait(20) == 0
    wait_for(lambda: not _alive(tree), 10, "every child of the tray to end")
    assert not (tray.home / ".ssh" / "config").exists()


def test_a_killed_tray_leaves_no_child_running_and_no_session_password_anywhere(
    tray_on_emulator: Callable[[EmulatorHandle], Tray],
    emulator_factory: Callable[..., EmulatorHandle],
    isolated_home: Path,
    real_keyring: SecretService,
    tmp_path: Path,
) -> None:
    emu = emulator_factory(sessions=3, agent_tick=0.3)
    SshConfig().ensure_include()  # agreed on an earlier day: no question this time
    tray = tray_on_emulator(emu)
    session_id = reachable_own_session(emu)
    wait_for(lambda: _requests(emu, "tasks.get_all_ex") >= 1, 30, "the first refresh")
    assert tray.second_start("connect", session_id).returncode == 0
    alias = f"clearml-{session_id[:8]}"
    managed = tray.home / ".ssh" / "clearml-tray" / "config"
    wait_for(lambda: managed.exists() and alias in managed.read_text(), 120, "the tunnel up")
    # The editor's own login goes through the tunnel: it must end with the tunnel too (it did
    # not when the tray's login to the machine, which holds the CLI's tunnels, outlived the tray).
    wait_for(
        lambda: any(alias in _cmdline(pid) for pid in _ours_by_command(tray.home)),
        30,
        "the editor's login through the tunnel",
    )
    tree = _tree(tray.proc.pid) | _ours_by_command(tray.home)
    tree.discard(tray.proc.pid)
    assert tree

    with emu.state.lock:
        password = str(emu.state.tasks[session_id]["runtime"]["_ssh_password"])
    assert password

    tray.proc.send_signal(signal.SIGKILL)
    tray.proc.wait(10)
    try:
        wait_for(lambda: not _alive(tree), 10, "the killed tray's children to end")
    except AssertionError:
        left = {pid: _cmdline(pid) for pid in _alive(tree)}
        raise AssertionError(f"still running 10 s after the tray was killed: {left}") from None
    assert not _ours_by_command(tray.home)
    # The session password was in the tray's memory only: after a kill -9 it is in no file
    # (home, data, logs, ssh config, runtime folder, the test's folder) and not in the keyring.
    folders = [tray.home, tmp_path, Path(os.environ["XDG_RUNTIME_DIR"])]
    holding = [p for folder in folders for p in _files_holding(folder, password)]
    assert holding == []
    assert real_keyring.stored() == {}
