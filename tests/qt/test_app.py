"""The composition root end to end in-process: start, apply settings without restart, demo, quit."""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication
from support.emulator import EmulatorHandle
from support.qt_dialogs import click_answer
from support.qt_wait import until

from tray_app.app import TrayApplication
from tray_app.core.server.refresh import TrayState
from tray_app.core.settings.settings import ServerProfile, default_settings_path


def _args(**kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "config_file": None,
        "demo": False,
        "show": False,
        "debug": False,
        "command": None,
    }
    base.update(kw)
    return argparse.Namespace(**base)


async def _until(predicate: Any, limit_s: float = 15.0) -> None:
    await until(predicate, "", limit_s)


async def test_start_switch_profile_without_restart_and_quit(
    qapp: Any, emulator_factory: Any, tmp_path: Path
) -> None:
    first: EmulatorHandle = emulator_factory(sessions=3)
    second: EmulatorHandle = emulator_factory(sessions=6, seed=7)
    conf1 = first.write_config(tmp_path / "one.conf")
    conf2 = second.write_config(tmp_path / "two.conf")
    app = TrayApplication(_args(config_file=str(conf1)))
    await app.start()
    await _until(lambda: app.poller.snapshot is not None)
    assert app.poller.status.server == first.url

    new = copy.deepcopy(app.settings)
    new.poll_interval_s = 30
    new.show_all_users = True
    new.profiles = [ServerProfile("default", ""), ServerProfile("lab", str(conf2))]
    new.active_profile = "lab"
    await app.settings_flow.apply(new)
    await _until(lambda: app.poller.snapshot is not None and app.poller.status.server == second.url)
    assert app.poller.schedule.interval == 30
    assert app.poller.snapshot is not None and app.poller.snapshot.all_users
    saved = json.loads(default_settings_path().read_text())
    assert saved["settings"]["active_profile"] == "lab"
    assert saved["settings"]["poll_interval_s"] == 30

    await app.quit()
    service = app.connection.service
    assert service is not None and service.client.closed


async def test_missing_config_shows_onboarding_then_demo_works(qapp: Any, tmp_path: Path) -> None:
    app = TrayApplication(_args(config_file=str(tmp_path / "missing.conf")))
    await app.start()
    assert app.poller.status.state == TrayState.UNCONFIGURED
    assert app.windows.onboarding is not None and app.windows.onboarding.isVisible()
    # One message, through the notification service (not a balloon next to the window).
    assert [n[:2] for n in app.notifier.sent] == [("info", "ClearML is not configured")]
    await app.source.apply()  # again (Retry): the window, but no second notification
    assert len(app.notifier.sent) == 1
    # "New session…" says what is missing instead of a dialog that could launch nothing.
    app.controller.handle("new_session")
    asked = await click_answer(app.ask, "Cancel")
    assert "ClearML server" in asked and app.windows.new_session_dialog is None
    app.windows.onboarding.demo.click()  # "Try the demo server"
    await _until(lambda: app.poller.snapshot is not None, limit_s=30)
    demo = app.source.demo
    assert demo is not None and demo.running
    assert app.poller.status.server == demo.url
    assert demo.url.startswith("http://127.0.0.1:")
    assert app.windows.onboarding is None or not app.windows.onboarding.isVisible()
    await app.quit()
    assert not demo.running


async def test_settings_warning_is_shown_and_defaults_used(qapp: Any) -> None:
    path = default_settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{ this is not json")
    app = TrayApplication(_args(config_file="/nonexistent/clearml.conf"))
    await app.start()
    # Through the desktop's notification service (the tray balloon is only its fallback).
    assert any(t == "Settings" and "bak" in b for _k, t, b in app.notifier.sent)
    assert app.notifier.icons[0] == "error"
    assert app.settings.poll_interval_s == 15
    await app.quit()


async def test_idle_session_warning_keep_alive_and_stop_now(
    qapp: Any, emulator_factory: Any, tmp_path: Path
) -> None:
    from tray_app.core.settings.settings import IdleMode, IdlePolicy, Settings, save_settings

    emu: EmulatorHandle = emulator_factory(sessions=5)  # session #3 is seeded idle
    conf = emu.write_config(tmp_path / "clearml.conf")
    save_settings(Settings(idle=IdlePolicy(mode=IdleMode.NOTIFY, window_minutes=5)), [])
    app = TrayApplication(_args(config_file=str(conf)))
    sent: list[tuple[str, str, str, Any]] = []
    app.notifier.notify = (  # type: ignore[method-assign]
        lambda kind, title, body, buttons=(), **kw: (
            sent.append((kind, title, body, buttons)) or True
        )
    )
    await app.start()
    await _until(lambda: any(k == "idle_warning" for k, *_ in sent))
    _kind, title, body, buttons = next(s for s in sent if s[0] == "idle_warning")
    assert [label for label, _ in buttons] == ["Keep alive 2h", "Stop now"]
    monitor = app.idle.monitor
    assert monitor is not None
    idle_id = next(sid for sid, v in monitor.verdicts.items() if v.state == "idle")
    # Named with its short id (names repeat), and why: busy cores, for how long, on which host.
    assert title == f"Idle session: Interactive Session ({idle_id[:8]})"
    assert "cores busy for" in body and " on cpu-host-" in body
    assert app.view().idle_notes[idle_id].startswith("Idle for ")
    assert app.view().idle_marks[idle_id].startswith("idle ")

    dict(buttons)["Keep alive 2h"]()
    assert monitor.kept_alive_until(idle_id) is not None
    assert app.view().idle_notes[idle_id].startswith("Kept alive until ")

    dict(buttons)["Stop now"]()
    await app.controller.wait_idle()
    with emu.state.lock:
        task = emu.state.tasks[idle_id]
        assert task["status"] == "stopped" or task.get("status_message") == "stopping"
    await app.quit()


def _editor_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install_ok: bool) -> Path:
    """A `code` on PATH that records each call (JSON lines) and keeps a list of extensions."""
    import os
    import sys

    record = tmp_path / "code-calls.jsonl"
    installed = tmp_path / "extensions.txt"
    installed.write_text("ms-python.python\n")
    stand_in = tmp_path / "bin" / "code"
    stand_in.parent.mkdir()
    stand_in.write_text(
        f"""#!{sys.executable}
import json, sys
args = sys.argv[1:]
open({str(record)!r}, "a").write(json.dumps(args) + "\\n")
if args == ["--list-extensions"]:
    print(open({str(installed)!r}).read(), end="")
elif args[:1] == ["--install-extension"]:
    if not {install_ok!r}:
        print("Failed Installing Extensions: " + args[1])
        sys.exit(1)
    open({str(installed)!r}, "a").write(args[1] + "\\n")
    print(f"Extension '{{args[1]}}' was successfully installed.")
"""
    )
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}")
    return record


def _calls(record: Path) -> list[list[str]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


async def test_ready_tunnel_offers_remote_ssh_then_opens_the_editor_on_our_ssh_host(
    qapp: Any, tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tray_app.core.tunnels.model import TunnelInfo, TunnelState

    record = _editor_stand_in(tmp_path, monkeypatch, install_ok=True)
    app = TrayApplication(_args(config_file=str(tmp_path / "none.conf")))
    info = TunnelInfo(
        key="abc",
        session_id="0123456789abcdef0123456789abcdef",
        state=TunnelState.READY,
        local_ssh_port=8022,
        user="root",
        remote_folder="~/work",  # the preset's --user-folder
    )
    app.editor.open(info)
    asked = await click_answer(app.ask, "Add the line")
    offered = await click_answer(app.ask, "Install")
    assert "VS Code needs the Remote - SSH extension (ms-vscode-remote.remote-ssh)" in offered
    await _until(lambda: len(_calls(record)) >= 3)
    assert _calls(record) == [
        ["--list-extensions"],
        ["--install-extension", "ms-vscode-remote.remote-ssh"],
        ["--new-window", "--folder-uri=vscode-remote://ssh-remote+clearml-01234567/root/work"],
    ]
    assert "+Include ~/.ssh/clearml-tray/config" in asked
    managed = (isolated_home / ".ssh" / "clearml-tray" / "config").read_text()
    assert "Host clearml-01234567" in managed and "Port 8022" in managed
    assert "Include ~/.ssh/clearml-tray/config" in (isolated_home / ".ssh" / "config").read_text()
    # Known to be installed now: the next Connect opens at once, with no question.
    app.editor.open(info)
    await _until(lambda: len(_calls(record)) >= 4)
    assert _calls(record)[3][0] == "--new-window" and not app.ask.open_dialogs
    await app.quit()


async def test_failed_remote_ssh_install_is_reported_and_the_editor_still_opens(
    qapp: Any, tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tray_app.core.tunnels.model import TunnelInfo, TunnelState

    record = _editor_stand_in(tmp_path, monkeypatch, install_ok=False)
    app = TrayApplication(_args(config_file=str(tmp_path / "none.conf")))
    sent: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        app.notifier, "notify", lambda kind, title, body, *a, **k: sent.append((kind, title, body))
    )
    info = TunnelInfo(
        key="abc",
        session_id="fedcba9876543210fedcba9876543210",
        state=TunnelState.READY,
        local_ssh_port=8023,
        user="alice",
    )
    app.editor.open(info)
    await click_answer(app.ask, "Add the line")
    await click_answer(app.ask, "Install")
    await _until(lambda: len(_calls(record)) >= 3)
    assert _calls(record)[2] == [
        "--new-window",
        "--folder-uri=vscode-remote://ssh-remote+clearml-fedcba98/home/alice",
    ]
    failure = [s for s in sent if s[1] == "Remote - SSH was not installed"]
    assert failure and "Failed Installing Extensions: ms-vscode-remote.remote-ssh" in failure[0][2]
    await app.quit()


async def test_presets_export_import_and_workspace_presets(
    qapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tray_app.core.settings.presets import Preset
    from tray_app.core.settings.settings import load_settings

    app = TrayApplication(_args(config_file=str(tmp_path / "none.conf")))
    sent: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        app.notifier, "notify", lambda kind, title, body, *a, **k: sent.append((kind, title, body))
    )
    app.store.replace_presets([Preset(name="gpu", queue="gpu-a100", packages=["torch"])])
    exported = tmp_path / "presets.json"
    assert await app.presets.export_to(exported)
    app.store.replace_presets([Preset(name="gpu", queue="old")])
    assert await app.presets.import_from(exported) == ["gpu"]
    imported = [(p.name, p.queue, p.packages) for p in app.presets.presets]
    assert imported == [("gpu", "gpu-a100", ["torch"])]
    assert [p.name for p in load_settings().presets] == ["gpu"]  # saved

    (tmp_path / "broken.json").write_text('{"presets": [{"queue": 1}]')
    assert await app.presets.import_from(tmp_path / "broken.json") == []
    assert sent[-1][0] == "error" and "broken.json" in sent[-1][2]

    workspace = tmp_path / "project"
    (workspace / ".vscode").mkdir(parents=True)
    (workspace / ".vscode" / "clearml.json").write_text(
        '{"presets": [{"name": "project-cpu", "queue": "sessions"}]}'
    )
    app.settings.workspace_folder = str(workspace)

    from tray_app.core.server.models import QueueInfo

    class Service:  # a server to launch on (without one, New session… explains that first)
        async def queues(self) -> list[Any]:
            return [
                QueueInfo("q1", "gpu-a100", free_workers=1, total_workers=1, interactive=True),
                QueueInfo("q2", "sessions", free_workers=0, total_workers=2),
            ]

    monkeypatch.setattr(type(app.connection), "service", property(lambda self: Service()))
    # The last launch went to "sessions" (a launch remembers its queue in the settings).
    await app.presets.remember_queue("sessions")
    # A Settings window opened before that launch does not bring the old queue back on OK.
    stale = load_settings().settings
    stale.last_queue = ""
    await app.settings_flow.apply(stale)
    assert app.settings.last_queue == "sessions" == load_settings().settings.last_queue
    await app.dialogs.new_session()
    dialog = app.windows.new_session_dialog
    names = [dialog.preset_picker.itemText(i) for i in range(dialog.preset_picker.count())]
    assert "gpu" in names and "project-cpu" in names
    await until(lambda: bool(dialog.queues), "the queue list")
    assert dialog.queue.text() == "gpu-a100"  # the first preset's own queue stays
    dialog.preset_picker.setCurrentIndex(0)  # "(new preset)": a one-off launch
    assert dialog.queue.text() == "sessions"  # not the free gpu-a100: the one used last
    dialog.close()
    await app.quit()


async def test_ready_tunnel_gets_a_shared_login_so_ssh_never_asks(
    qapp: Any, tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import shutil
    import subprocess
    import sys

    from support.ssh_server import running_ssh_server

    from tray_app.core.tunnels.model import TunnelInfo, TunnelState

    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    stand_in = tmp_path / "bin" / "code"
    stand_in.parent.mkdir()
    stand_in.write_text(f"#!{sys.executable}\n")
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_in.parent}{os.pathsep}{os.environ['PATH']}")

    from tray_app.qt.single_instance import SingleInstance

    with running_ssh_server(password="tunnel pw]1") as server:
        app = TrayApplication(_args(config_file=str(tmp_path / "none.conf")))
        # The askpass helper asks the tray for the password over its instance socket.
        instance = SingleInstance(app.requests.handle)
        assert instance.listen()
        info = TunnelInfo(
            key="k1",
            session_id="0123456789abcdef0123456789abcdef",
            state=TunnelState.READY,
            local_ssh_port=server.port,
            user="root",
        )
        app.hosts.tunnel_up(info, server.password)  # the tunnel came up, with its password
        app.editor.open(info)
        await click_answer(app.ask, "Add the line")
        # The stand-in lists no extensions: decline the Remote-SSH offer.
        await click_answer(app.ask, "Not now")
        await app.controller.wait_idle()
        assert server.logins == ["root"]
        assert "clearml-01234567" in app.hosts.masters

        def ssh_echo() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                # -F: OpenSSH finds ~ through the password database, not $HOME
                [
                    "ssh",
                    "-F",
                    str(isolated_home / ".ssh" / "config"),
                    "-o",
                    "BatchMode=yes",
                    "clearml-01234567",
                    "echo",
                    "ok",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
            )

        result = await asyncio.to_thread(ssh_echo)
        assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
        assert server.logins == ["root"]  # reused, no second password login
        assert len(app.session_passwords) == 0  # the one answer was given: nothing left
        await app.quit()
        instance.close()
        assert (await asyncio.to_thread(ssh_echo)).returncode != 0  # master closed at Quit


async def test_stale_host_blocks_of_an_earlier_run_are_removed_at_start(
    qapp: Any, tmp_path: Path, isolated_home: Path
) -> None:
    from tray_app.core.tunnels.ssh_config import HostEntry, SshConfig

    config = SshConfig()
    config.add(HostEntry("0123456789abcdef0123456789abcdef", 8022, "root", "127.0.0.1"))
    config.add(HostEntry("fedcba9876543210fedcba9876543210", 8023, "root", "127.0.0.1"))
    assert len(config.aliases()) == 2
    app = TrayApplication(_args(config_file=str(tmp_path / "none.conf")))
    await app.start()
    await app.controller.wait_idle()
    assert config.aliases() == []  # no tunnel survives a run: every block pointed at nothing
    await app.quit()


async def test_editor_check_runs_while_the_tunnel_comes_up_and_is_joined_not_repeated(
    qapp: Any, tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Launching starts the Remote-SSH check; a ready tunnel meanwhile joins it (one
    `--list-extensions`), so the editor is not held up by it when the session is ready."""
    from tray_app.core.tunnels.editors import find_editor

    record = _editor_stand_in(tmp_path, monkeypatch, install_ok=True)
    (tmp_path / "extensions.txt").write_text("ms-vscode-remote.remote-ssh\n")
    app = TrayApplication(_args(config_file=str(tmp_path / "none.conf")))
    editor = find_editor()
    assert editor is not None
    flow = app.editor
    flow.check_soon()  # what a launch and an attach do
    both = asyncio.ensure_future(
        asyncio.gather(flow.ensure_remote_ssh(editor), flow.ensure_remote_ssh(editor))
    )
    await _until(both.done)
    assert both.result() == [True, True]
    await app.controller.wait_idle()
    assert _calls(record) == [["--list-extensions"]]
    assert await flow.ensure_remote_ssh(editor) is True  # known now: no new call
    assert _calls(record) == [["--list-extensions"]]
    await app.quit()


async def test_a_reused_tunnel_port_with_another_host_key_still_logs_in_without_a_password(
    qapp: Any, tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sessions, one after the other, behind the same local port with different host keys
    (what a restarted or a new session often gets): both logins go through, nothing is asked."""
    import shutil

    from support.ssh_server import running_ssh_server

    from tray_app.core.tunnels.model import TunnelInfo, TunnelState
    from tray_app.core.tunnels.ssh_config import SshConfig

    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    from tray_app.qt.single_instance import SingleInstance

    SshConfig().ensure_include()
    app = TrayApplication(_args(config_file=str(tmp_path / "none.conf")))
    instance = SingleInstance(app.requests.handle)  # where the askpass helper asks
    assert instance.listen()
    logins: list[str] = []
    port = 0
    for session_id in ("0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"):
        with running_ssh_server(password=f"pw-{session_id[:4]}", port=port or None) as server:
            port = server.port
            info = TunnelInfo(
                session_id, session_id, TunnelState.READY, local_ssh_port=port, user="root"
            )
            app.hosts.tunnel_up(info, server.password)
            assert await app.hosts.prepare_host(info) == f"clearml-{session_id[:8]}"
            await app.controller.wait_idle()
            assert f"clearml-{session_id[:8]}" in app.hosts.masters
            logins += server.logins
    instance.close()
    assert logins == ["root", "root"]
    assert not app.ask.open_dialogs and not QApplication.clipboard().text().startswith("pw-")
    # Each session has its own master (the control socket is per alias, not per host:port).
    assert set(app.hosts.masters) == {"clearml-01234567", "clearml-fedcba98"}
    await app.quit()

    def masters_left() -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "ControlMaster=yes" in argv and str(isolated_home) in argv:
                found.append(argv)
        return found

    await until(lambda: not masters_left(), "both masters closed at Quit", 10)


async def test_quit_leaves_no_window_or_tray_retry_behind(qapp: Any, tmp_path: Path) -> None:
    """Without a tray host the tray shows its window and keeps looking for a host; after Quit
    neither goes on (a later tray host must not get a ghost icon)."""
    from PySide6.QtWidgets import QSystemTrayIcon

    app = TrayApplication(_args(config_file=str(tmp_path / "none.conf")))
    await app.start()
    if QSystemTrayIcon.isSystemTrayAvailable():
        pytest.skip("a tray host is running on this display")
    assert app.tray.window is not None and app.tray.window.isVisible()
    app.controller.handle("about")
    await app.quit()
    assert not app.tray.window.isVisible() and not app.tray._retry.isActive()
    assert not app.tray.icon.isVisible() and not app.windows._open


async def test_the_tray_answers_list_from_its_latest_snapshot(
    qapp: Any, emulator_factory: Any, tmp_path: Path
) -> None:
    """`clearml-tray list` asks the running tray: its answer is what list prints on its own."""
    from tray_app.core.view.list_output import render

    emu: EmulatorHandle = emulator_factory(sessions=8)
    app = TrayApplication(_args(config_file=str(emu.write_config(tmp_path / "c.conf"))))
    assert app.requests.handle({"cmd": "snapshot", "format": "json"}).ok is False
    await app.start()
    await _until(lambda: app.poller.snapshot is not None)
    snapshot = app.poller.snapshot
    assert snapshot is not None and not snapshot.all_users
    await _until(lambda: bool(app.idle.verdicts()))  # the idle check after the refresh
    reply = app.requests.handle({"cmd": "snapshot", "all_users": False, "format": "json"})
    assert reply.ok
    assert reply.extra["output"] == render(snapshot, "json", idle=app.idle.verdicts())
    # The verdicts the tray acts on: the seed has a busy one (one GPU of eight), an idle one
    # (a 64-core host) and an unknown one (a MIG slice).
    verdicts = [s["idle"] for s in json.loads(str(reply.extra["output"]))["sessions"]]
    states = {v["state"]: v["reason"] for v in verdicts if v}
    assert {"busy", "idle", "unknown"} <= set(states)
    assert "cores busy for 1h" in states["idle"] and "MIG slice" in states["unknown"]
    refused = app.requests.handle({"cmd": "snapshot", "all_users": True, "format": "json"})
    assert (refused.ok, dict(refused.extra)) == (False, {})
    await app.quit()


async def test_a_saved_preset_launches_from_the_presets_submenu_in_one_click(
    qapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tray_app.core.settings.presets import Preset

    app = TrayApplication(_args(config_file=str(tmp_path / "missing.conf")))
    await app.start()
    app.store.replace_presets([Preset(name="gpu", queue="gpu-a100")])
    launched: list[str] = []

    async def launch(preset: Preset) -> str:
        launched.append(preset.name)
        return "launch-1"

    monkeypatch.setattr(app.launch_flow, "launch", launch)
    app.tray.menu.aboutToShow.emit()  # what Qt does when the menu opens
    presets = next(a for a in app.tray.menu.actions() if a.text() == "Presets")
    presets.menu().aboutToShow.emit()
    row = next(a for a in presets.menu().actions() if a.text() == "Launch “gpu”")
    row.trigger()
    await _until(lambda: launched == ["gpu"])
    await app.quit()
