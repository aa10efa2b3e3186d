"""The registry of `clearml-session` children, without a display: a scripted child per launch.

Every transcript in `tests/fixtures/transcripts/` is fed through a scripted `ChildProcess`;
the table says what the registry did with it, as the user and the other parts see it: what it
typed into the CLI, which notices it posted, how often it prepared the Host block and opened the
editor, whether it handed the password over, and where the tunnel ended up.
"""

from __future__ import annotations

import asyncio
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from support.tunnel_rig import Rig

from tray_app.core.settings.presets import PasswordPolicy, Preset
from tray_app.core.tunnels.model import TunnelState
from tray_app.core.tunnels.password_ahead import Hold

HERE = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"
SID = "0123456789abcdef0123456789abcdef"
PRESET = Preset(name="gpu box", queue="sessions")


# transcript → (final state, what was typed into the CLI, notices after "progress",
#               Host blocks prepared, editors opened, password hand-overs asked)
TABLE: dict[str, tuple[TunnelState, list[str], list[str], int, int, int]] = {
    "composed_incorrect_password.txt": (TunnelState.FAILED, [], ["session_failed"], 0, 0, 1),
    "composed_reconnect.txt": (TunnelState.READY, [], ["session_ready"], 2, 1, 1),
    "composed_retry_then_ready.txt": (TunnelState.READY, [], ["session_ready"], 1, 1, 1),
    "composed_shutdown.txt": (TunnelState.READY, [], ["session_ready"], 1, 1, 1),
    "composed_success_full.txt": (TunnelState.READY, [], ["session_ready"], 1, 1, 1),
    "composed_success_ssh_only.txt": (TunnelState.READY, [], ["session_ready"], 1, 1, 1),
    "composed_traceback.txt": (TunnelState.FAILED, [], ["session_failed"], 0, 0, 0),
    "real_attach_retry.txt": (TunnelState.RETRYING, [], [], 0, 0, 0),
    "real_auth_error.txt": (TunnelState.FAILED, [], ["session_failed"], 0, 0, 0),
    "real_bad_queue.txt": (TunnelState.FAILED, [], ["session_failed"], 0, 0, 0),
    "real_launch_prompts_retry.txt": (TunnelState.RETRYING, ["N", "y", "y"], [], 0, 0, 1),
    "real_launch_retry.txt": (TunnelState.RETRYING, ["y", "y"], [], 0, 0, 1),
    "real_missing_config.txt": (TunnelState.FAILED, [], ["session_failed"], 0, 0, 0),
    "real_ready_full.txt": (TunnelState.READY, ["y", "y"], ["session_ready"], 1, 1, 1),
    "real_ready_ssh_only.txt": (TunnelState.READY, ["y", "y"], ["session_ready"], 1, 1, 1),
    "real_reconnect_shutdown.txt": (TunnelState.READY, ["y", "y"], ["session_ready"], 2, 1, 1),
    "real_setup_failed.txt": (TunnelState.FAILED, [], ["session_failed"], 0, 0, 0),
}


class HandOver:
    """A PasswordAhead stand-in: records the holds and the hand-overs the reducer asked for."""

    def __init__(self) -> None:
        self.handed: list[tuple[str, str, str, int]] = []
        self.held: list[str] = []
        self.released: list[str] = []

    async def hold(self, key: str, session_id: str | None = None) -> Hold:
        self.held.append(key)
        return Hold(Path(f"/nonexistent/login-{key}.pending"), f"token-{key}")

    async def hand_over(self, hold: Hold, session_id: str, user: str, host: str, port: int) -> bool:
        self.handed.append((session_id, user, host, port))
        return True

    def release(self, hold: Hold) -> None:
        self.released.append(hold.token)


def test_the_table_covers_every_transcript() -> None:
    assert sorted(TABLE) == sorted(p.name for p in HERE.glob("*.txt"))


@pytest.mark.parametrize("name", sorted(TABLE))
async def test_a_transcript_through_the_registry(make_rig: Callable[..., Rig], name: str) -> None:
    ahead = HandOver()
    rig = make_rig(ahead=ahead)
    creating = "attach" not in name
    if creating:
        launched = await rig.registry.create(PRESET)
        assert launched.key == "launch-1" and ahead.held == ["launch-1"]
        env = rig.child.spec.env  # its ssh waits on the marker, with a token for our helper
        assert env["CLEARML_TRAY_LOGIN_MARKER"] == "/nonexistent/login-launch-1.pending"
        assert env["CLEARML_TRAY_ASKPASS_TOKEN"] == "token-launch-1"
    else:
        assert await rig.registry.attach_now(SID, "gpu box") == "attach-1"
    rig.child.print((HERE / name).read_text(encoding="utf-8"))
    await rig.settle()
    state, typed, notices, ups, editors, handed = TABLE[name]
    info = rig.only()
    assert info.state is state, info.last_message
    assert [w.strip() for w in rig.child.written] == typed
    assert rig.rec.kinds() == ["progress", *notices]
    assert (len(rig.rec.ups), len(rig.rec.editors), len(ahead.handed)) == (ups, editors, handed)
    if handed:  # for the login the CLI named: its own user, host and port
        (_, user, host, port), *_ = ahead.handed
        assert user == "root" and host and port > 0
    if creating and info.session_id:
        # From the moment the CLI names the new session, it is known by its id; the launch
        # key still finds it (a notice's buttons, the log window).
        assert info.key == info.session_id and rig.registry.child("launch-1") is not None
    elif not creating:
        assert (info.key, info.session_id) == ("attach-1", SID)
    if state is TunnelState.READY:
        (up, password), *_ = rig.rec.ups
        assert password and password == rig.registry.password(info.key)
        assert up.ssh_host_alias == f"clearml-{info.key[:8]}" and up.local_ssh_port
        assert password not in "".join(text for _, text in rig.rec.outputs)
        assert password not in info.log_path.read_text()  # type: ignore[union-attr]
    # Every notice of one child replaces the one before (one tag).
    assert len({n[4] for n in rig.rec.notices}) == 1


async def test_the_clis_state_file_goes_when_it_ends_and_the_log_stays(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    await rig.registry.create(PRESET)
    child = rig.registry.child("launch-1")
    assert child is not None
    state_file = child.state_file
    state_file.write_text('{"password": "from the CLI"}')  # what the CLI itself writes
    rig.child.print((HERE / "real_ready_full.txt").read_text(encoding="utf-8"))
    rig.child.exit(0)
    await rig.settle()
    assert not state_file.exists()
    assert rig.only().state is TunnelState.CLOSED
    log = rig.only().log_path
    assert log is not None and log.read_text().startswith("$ /opt/bin/clearml-session ")
    assert "[exit 0]" in log.read_text()


async def test_a_fixed_password_goes_to_the_state_file_never_to_argv(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    preset = Preset(name="fixed", queue="q", password_policy=PasswordPolicy.FIXED)
    launched = await rig.registry.create(preset, "Fixed pw 0123")
    assert launched.key is not None
    assert not any("Fixed pw" in arg for arg in rig.child.spec.argv)
    child = rig.registry.child(launched.key)
    assert child is not None and "Fixed pw 0123" in child.state_file.read_text()
    assert stat.S_IMODE(child.state_file.stat().st_mode) == 0o600
    assert "--config-file" in rig.child.spec.argv


async def test_what_cannot_start_is_said_in_words_and_starts_nothing(
    make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig()
    preset = Preset(name="fixed", queue="q", password_policy=PasswordPolicy.FIXED)
    launched = await rig.registry.create(preset, None)  # the keyring had none for it
    assert launched.key is None and "fixed password" in launched.message
    assert rig.children.children == [] and rig.registry.tunnels() == {}
    # No clearml-session anywhere: a Connect says so; a prewarmed attach keeps quiet.
    from tray_app.core.tunnels import environment

    monkeypatch.setattr(environment, "find_executable", lambda name="", path=None: None)
    rig = make_rig(executable=None)
    rig.registry.attach(SID, "gpu box", prewarm=True)
    await rig.settle()
    assert rig.rec.notices == []
    assert await rig.registry.attach_now(SID, "gpu box") is None
    ((kind, title, body, _, _),) = rig.rec.notices
    assert (kind, title) == ("error", "Cannot connect")
    assert body.startswith("clearml-session is not installed next to the tray nor on PATH")
    assert rig.children.children == []


async def test_an_unknown_question_is_asked_and_the_answer_typed(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.rec.answers = ["n", None]
    await rig.registry.create(PRESET)
    rig.child.print("Overwrite the local workspace folder '/tmp/x' [Y]/n? ")
    rig.child.quiet()  # not yet quiet long enough: nobody is asked
    await rig.settle()
    assert rig.rec.asked == []
    rig.clock[0] += 2.0
    rig.child.quiet()
    rig.child.quiet()  # asked once, however long it stays quiet
    await rig.settle()
    assert rig.rec.asked == ["Overwrite the local workspace folder '/tmp/x' [Y]/n?"]
    assert rig.child.written == ["n\n"]
    # Closing the question (no answer) ends the child: nothing is typed for the user.
    rig.child.print("\nAnother question [y/N]? ")
    rig.clock[0] += 2.0
    rig.child.quiet()
    await rig.settle()
    assert rig.child.written == ["n\n"] and rig.child.terminated == 1
    assert rig.only().state is TunnelState.CLOSED


async def test_the_progress_notice_follows_the_log_and_cancels(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    await rig.registry.create(Preset(name="p", queue="q", session_name="My session"))
    ((kind, title, body, buttons, _tag),) = rig.rec.notices
    assert (kind, title) == ("progress", "Starting a session") and body.startswith("My session: ")
    assert [label for label, _ in buttons] == ["Follow log", "Cancel"]
    dict(buttons)["Follow log"]()
    assert rig.rec.followed == ["launch-1"]
    dict(buttons)["Cancel"]()
    assert rig.child.terminated == 1 and rig.only().state is TunnelState.CLOSED
    assert rig.rec.kinds() == ["progress"]  # ended on purpose: no failure notice


async def test_the_ready_notice_buttons_reach_the_host_the_editor_and_jupyter(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(open_editor_when_ready=False)
    await rig.registry.attach_now(SID, "gpu box")
    rig.child.print((HERE / "composed_success_full.txt").read_text(encoding="utf-8"))
    await rig.settle()
    kind, title, body, buttons, _ = rig.rec.notices[-1]
    assert (kind, title) == ("session_ready", "Session ready")
    assert body == "gpu box (01234567) is connected."
    assert rig.rec.editors == []  # the setting: not opened by itself
    labels = dict(buttons)
    labels["Copy SSH command"]()
    labels["Open in VS Code"]()
    labels["Open JupyterLab"]()
    info = rig.only()
    assert rig.rec.copied == [f"ssh {info.ssh_host_alias}"] and rig.rec.editors == [info]
    assert rig.rec.opened_urls == [info.jupyter_url]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://evil.example.org:8878/?token=x",
        "javascript:alert(1)",
        "http://user:pw@localhost:8878/",
    ],
)
async def test_the_notice_offers_open_jupyterlab_only_for_a_url_the_menu_would_open(
    make_rig: Callable[..., Rig], url: str
) -> None:
    """The CLI prints what the remote side wrote: a task can make it name anything."""
    text = (HERE / "composed_success_full.txt").read_text(encoding="utf-8")
    text = re.sub(r"Jupyter Lab URL: \S+", f"Jupyter Lab URL: {url}", text)
    rig = make_rig(open_editor_when_ready=False)
    await rig.registry.attach_now(SID, "gpu box")
    rig.child.print(text)
    await rig.settle()
    _kind, title, _body, buttons, _ = rig.rec.notices[-1]
    assert title == "Session ready"
    assert "Open JupyterLab" not in dict(buttons)
    assert rig.rec.opened_urls == []


async def test_the_notice_button_checks_the_url_again_when_clicked(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(open_editor_when_ready=False)
    await rig.registry.attach_now(SID, "gpu box")
    rig.child.print((HERE / "composed_success_full.txt").read_text(encoding="utf-8"))
    await rig.settle()
    open_jupyter = dict(rig.rec.notices[-1][3])["Open JupyterLab"]
    # Reconnected meanwhile, and the remote side now names another host.
    child = rig.registry.child(rig.only().key)
    assert child is not None
    child.model = child.model.with_info(jupyter_url="http://198.51.100.7:8878/")
    open_jupyter()
    assert rig.rec.opened_urls == []
    assert rig.rec.notices[-1][1] == "JupyterLab not opened"


async def test_reconnect_and_shutdown_are_typed_into_the_cli(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    await rig.registry.create(PRESET)
    rig.child.print((HERE / "real_ready_full.txt").read_text(encoding="utf-8"))
    session = rig.only().key
    rig.registry.reconnect(session)
    assert rig.child.written[-1] == "r\n"
    assert rig.only().state is TunnelState.CONNECTING
    rig.registry.shutdown("launch-1")  # the launch key still finds it
    assert rig.child.written[-1] == "Shutdown\n"
    assert rig.only().state is TunnelState.CLOSED


async def test_quit_with_shutdown_asks_ready_children_to_shut_their_session_down(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    await rig.registry.attach_now(SID, "ready one")
    ready = rig.child
    ready.print((HERE / "composed_success_full.txt").read_text(encoding="utf-8"))
    await rig.registry.create(PRESET)  # still coming up: it cannot pass Shutdown on
    starting = rig.child
    rig.registry.stop_all(shutdown_remote=True)
    assert ready.written == ["Shutdown\n"] and ready.exit_code == 0 and ready.terminated == 0
    assert "Shutdown\n" not in starting.written and starting.terminated == 1
    assert all(t.state is TunnelState.CLOSED for t in rig.registry.tunnels().values())


async def test_a_prewarmed_attach_is_silent_until_promoted(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    rig.registry.attach(SID, "gpu box", prewarm=True)
    await rig.settle()
    rig.child.print((HERE / "composed_success_full.txt").read_text(encoding="utf-8"))
    info = rig.only()
    assert info.prewarmed and info.state is TunnelState.READY
    assert rig.registry.password(info.key)  # learnt, for a later login
    # Nobody asked yet: no notice, no Host block or login, no editor, no check of it.
    assert rig.rec.notices == [] and rig.rec.ups == [] and rig.rec.editors == []
    assert rig.rec.editor_checks == 0
    rig.registry.attach(SID, "gpu box")  # Connect: the same child, taken over
    await rig.settle()
    assert len(rig.children.children) == 1
    taken = rig.only()
    assert not taken.prewarmed and [i.key for i, _ in rig.rec.ups] == [taken.key]
    assert rig.rec.kinds() == ["session_ready"]
    assert rig.rec.editors == []  # the caller (ConnectFlow) opens the editor on a ready tunnel


async def test_a_prewarmed_attach_still_coming_up_says_so_once_taken_over(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.registry.attach(SID, "Interactive Session", prewarm=True)
    await rig.settle()
    rig.child.print("Starting SSH tunnel to root@127.0.3.17, port 10022\n")
    assert rig.rec.notices == []
    taken = rig.registry.promote(rig.only().key)
    assert taken is not None and not taken.prewarmed
    ((kind, title, body, _buttons, _),) = rig.rec.notices
    assert (kind, title) == ("progress", "Connecting to the session")
    assert body.startswith("Interactive Session (01234567)")
    rig.child.print((HERE / "composed_success_full.txt").read_text(encoding="utf-8"))
    assert len(rig.rec.editors) == 1  # opened the moment it is ready


async def test_an_unused_prewarmed_attach_ends_quietly_and_leaves_nothing(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    rig.registry.attach(SID, "gpu box", prewarm=True)
    await rig.settle()
    rig.child.print((HERE / "composed_success_full.txt").read_text(encoding="utf-8"))
    key = rig.only().key
    child = rig.registry.child(key)
    assert child is not None
    log, state_file = child.output.log_path, child.state_file
    state_file.write_text("{}")
    rig.registry.retire(key)
    assert rig.registry.tunnels() == {}
    assert not log.exists() and not state_file.exists() and rig.child.released
    assert rig.rec.notices == []


async def test_an_exit_nobody_asked_for_says_so_with_the_last_lines(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    await rig.registry.attach_now(SID, "gpu box")
    rig.child.print("Checking session #x\nsomething went wrong here\n")
    rig.child.exit(3)
    kind, title, body, buttons, _ = rig.rec.notices[-1]
    assert (kind, title) == ("session_failed", "clearml-session stopped")
    assert "exited with code 3" in body and "something went wrong here" in body
    assert [label for label, _ in buttons] == ["Show log"]
    assert rig.only().state is TunnelState.FAILED


async def test_a_flooding_child_cannot_fill_the_disk_with_its_log(
    make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tray_app.core.tunnels import output

    monkeypatch.setattr(output, "LOG_LIMIT_CHARS", 50_000)
    rig = make_rig()
    await rig.registry.attach_now(SID, "gpu box")
    for _ in range(300):
        rig.child.print("x" * 999 + "\n")
    rig.child.print("the end\n")
    rig.child.exit(0)
    child = rig.registry.child("attach-1")
    assert child is not None
    text = child.output.log_path.read_text()
    assert len(text) < 50_000 + 200  # ~300 kB of output, the log capped
    assert "[the log stops here: over 0 MB of output]" in text
    assert child.output.last_lines[-1] == "the end"  # still read and remembered after the cap


async def test_ended_sessions_lose_their_host_blocks(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig()
    await rig.registry.attach_now(SID, "gpu box")
    rig.child.print((HERE / "composed_success_full.txt").read_text(encoding="utf-8"))
    assert rig.rec.live[-1] == {SID}
    rig.registry.disconnect("attach-1")
    assert rig.rec.live[-1] == set()


async def test_a_launch_log_keeps_its_key_and_takes_the_sessions_name(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    await rig.registry.create(Preset(name="gpu box", queue="sessions"))
    assert rig.registry.log_labels() == {"launch-1": "gpu box"}
    rig.child.print((HERE / "real_ready_ssh_only.txt").read_text(encoding="utf-8"))
    await rig.settle()
    info = rig.only()
    assert info.key == info.session_id  # renamed by the CLI's task id
    # The output is still told under the launch's key: a log window opened before keeps going.
    assert {key for key, _ in rig.rec.outputs} == {"launch-1"}
    assert rig.registry.log_key(info.key) == "launch-1"
    assert rig.registry.log_labels() == {"launch-1": f"gpu box ({info.key[:8]})"}
    # Show log on the session offers this log beside the server's.
    assert info.session_id is not None
    launcher = rig.registry.launcher_log(info.session_id)
    assert launcher is not None and launcher[0] == "launch-1"
    assert launcher[1].strip()  # what it printed so far
    assert rig.registry.launcher_log("f" * 32) is None


async def test_where_the_cli_ignores_typed_commands_reconnect_restarts_it(
    make_rig: Callable[..., Rig],
) -> None:
    """On Windows clearml-session polls the console keyboard, so "r" and "Shutdown" piped to
    it do nothing: Reconnect ends the CLI and attaches again; Shutdown ends it and stops the
    session through the server."""
    stopped: list[str] = []
    rig = make_rig(stdin_commands=False, stop_session=stopped.append)
    await rig.registry.attach_now(SID, "gpu box")
    rig.child.print((HERE / "composed_success_ssh_only.txt").read_text(encoding="utf-8"))
    await rig.settle()
    first = rig.child
    key = rig.only().key
    rig.registry.reconnect(key, "Reconnecting")
    await rig.settle()
    assert first.written == [] and first.terminated == 1  # ended, not typed into
    assert len(rig.children.children) == 2 and rig.child is not first
    assert rig.child.spec.argv[-4:-1] == ("--attach", SID, "--yes")
    assert "session_failed" not in rig.rec.kinds()  # its end was ours
    second = rig.child
    live = [t for t in rig.registry.tunnels().values() if t.live]
    assert len(live) == 1
    rig.registry.shutdown(live[0].key)
    await rig.settle()
    assert second.written == [] and second.terminated == 1 and stopped == [SID]
    assert len(rig.children.children) == 2  # no restart after a shutdown


async def test_quit_with_shutdown_stops_sessions_by_the_api_where_stdin_is_ignored(
    make_rig: Callable[..., Rig],
) -> None:
    stopped: list[str] = []
    rig = make_rig(stdin_commands=False, stop_session=stopped.append)
    await rig.registry.attach_now(SID, "gpu box")
    rig.child.print((HERE / "composed_success_ssh_only.txt").read_text(encoding="utf-8"))
    await rig.settle()
    rig.registry.stop_all(shutdown_remote=True)
    assert stopped == [SID] and rig.child.written == [] and not rig.child.running()


def _read_with_mode(path: Path) -> tuple[str, int]:
    return path.read_text(), path.stat().st_mode


def _exists(path: Path) -> bool:
    return path.exists()


async def test_a_fixed_passwords_state_file_goes_once_the_cli_named_the_session(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    preset = Preset(name="fixed", queue="sessions", password_policy=PasswordPolicy.FIXED)
    launched = await rig.registry.create(preset, "fixed-pw-4321")
    assert launched.key is not None
    argv = rig.child.spec.argv
    state = Path(argv[argv.index("--config-file") + 1])
    text, mode = _read_with_mode(state)
    assert text == '{"password": "fixed-pw-4321", "randomize": false}'
    assert mode & 0o077 == 0 and "fixed-pw-4321" not in " ".join(argv)
    rig.child.print("New session created [id=0123456789abcdef0123456789abcdef]\n")
    await rig.settle()
    assert not _exists(state)  # read at the CLI's start: not kept while the tunnel lives


async def test_a_launch_without_a_fixed_password_has_no_state_file_at_all(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig()
    await rig.registry.create(Preset(name="random", queue="sessions"))
    argv = rig.child.spec.argv
    assert not _exists(Path(argv[argv.index("--config-file") + 1]))
    assert argv[-1] == "--disable-store-defaults"  # nor does the CLI write one
    rig.child.exit(0)
    assert not list((rig.data / "sessions").glob("*.json"))


async def test_a_childs_hold_is_released_when_it_ends(make_rig: Callable[..., Rig]) -> None:
    ahead = HandOver()
    rig = make_rig(ahead=ahead)
    await rig.registry.create(PRESET)
    rig.child.exit(1)
    await rig.settle()
    assert ahead.released == ["token-launch-1"]


async def test_two_attaches_do_not_choose_their_local_ports_at_the_same_time(
    make_rig: Callable[..., Rig],
) -> None:
    """clearml-session picks free local ports and binds them only once logged in: two CLIs
    started together take the same ones. The second starts once the first's tunnel is up."""
    other = "fedcba9876543210fedcba9876543210"
    rig = make_rig()
    first = asyncio.ensure_future(rig.registry.attach_now(SID, "gpu box"))
    await first
    second = asyncio.ensure_future(rig.registry.attach_now(other, "cpu box"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(rig.children.children) == 1 and not second.done()  # waits for the first's ports
    rig.children.children[0].print(
        (HERE / "composed_success_ssh_only.txt").read_text(encoding="utf-8")
    )
    assert await asyncio.wait_for(second, 5) == "attach-2"
    assert len(rig.children.children) == 2
    # A child that ends (or fails) frees the way as well.
    third = asyncio.ensure_future(rig.registry.attach_now("0" * 32, "third"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not third.done()
    rig.children.children[1].exit(1)
    assert await asyncio.wait_for(third, 5) == "attach-3"


async def test_a_connect_while_its_attach_waits_for_ports_joins_that_attach(
    make_rig: Callable[..., Rig],
) -> None:
    other = "fedcba9876543210fedcba9876543210"
    rig = make_rig()
    await rig.registry.attach_now(SID, "gpu box")  # still choosing its ports
    rig.registry.attach(other, "cpu box")
    rig.registry.attach(other, "cpu box")  # clicked again while it waits
    for _ in range(5):
        await asyncio.sleep(0)
    rig.children.children[0].print(
        (HERE / "composed_success_ssh_only.txt").read_text(encoding="utf-8")
    )
    await rig.settle()
    assert [c.spec.argv[-3] for c in rig.children.children] == [SID, other]  # one attach each
