"""The Host block and the login ahead of the editor, and the editor itself, without Qt:
scripted answers, a recording desktop and runner."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tray_app.core.ports import Question
from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.hosts import SessionHosts
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.tunnels.open_editor import EditorOpener
from tray_app.core.tunnels.session_passwords import SessionPasswords
from tray_app.core.tunnels.ssh_config import SshConfig

SID = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


class ScriptedAsk:
    """Answers questions in order; an answer may be a future the test resolves later."""

    def __init__(self, *answers: int | asyncio.Future[int | None] | None) -> None:
        self.answers = list(answers)
        self.asked: list[Question] = []

    async def ask(self, question: Question) -> int | None:
        self.asked.append(question)
        answer = self.answers.pop(0)
        return await answer if isinstance(answer, asyncio.Future) else answer

    async def ask_text(self, title: str, prompt: str) -> str | None:
        return None

    def cancel_all(self) -> None:
        pass


@dataclass
class Recorder:
    notices: list[tuple[str, str, str]] = field(default_factory=list)
    buttons: list[Any] = field(default_factory=list)
    critical: list[bool] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    secrets_copied: list[tuple[str, float]] = field(default_factory=list)
    started: list[list[str]] = field(default_factory=list)
    ran: list[list[str]] = field(default_factory=list)
    envs: list[Mapping[str, str]] = field(default_factory=list)
    code: int = 0
    codes: list[int] = field(default_factory=list)  # exit codes to give first, in order
    slept: list[float] = field(default_factory=list)

    def notify(self, kind: str, title: str, body: str, buttons: Any = (), **kw: Any) -> bool:
        self.notices.append((kind, title, body))
        self.buttons.append(list(buttons))
        self.critical.append(bool(kw.get("critical")))
        return True

    def copy(self, text: str) -> None:
        self.copied.append(text)

    def copy_secret(self, text: str, clear_after_s: float = 30.0) -> None:
        self.copied.append(text)
        self.secrets_copied.append((text, clear_after_s))

    def open_url(self, url: str) -> bool:
        self.started.append(["open", url])
        return True

    def start_detached(self, argv: Sequence[str]) -> bool:
        self.started.append(list(argv))
        return True

    async def run(
        self, argv: Sequence[str], env: Mapping[str, str], timeout_s: float = 60
    ) -> tuple[int, str]:
        self.ran.append(list(argv))
        self.envs.append(env)
        if "-G" in argv:  # how ssh resolves the alias (before each login): always answers
            return 0, ""
        return (self.codes.pop(0) if self.codes else self.code), ""

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def ready(sid: str = SID, port: int = 8022, generation: int = 1) -> TunnelInfo:
    return TunnelInfo(
        sid, sid, TunnelState.READY, local_ssh_port=port, user="root", generation=generation
    )


@dataclass
class Parts:
    hosts: SessionHosts
    editor: EditorOpener
    rec: Recorder
    passwords: SessionPasswords
    tasks: list[asyncio.Task[Any]]

    async def settle(self) -> None:
        while any(not t.done() for t in self.tasks):
            await asyncio.gather(*self.tasks)

    def up(self, info: TunnelInfo, password: str = "pw-session") -> None:
        self.hosts.tunnel_up(info, password)


@pytest.fixture
def parts(isolated_home: Path, tmp_path: Path) -> Any:
    def make(ask: ScriptedAsk, settings: Settings | None = None) -> Parts:
        rec = Recorder()
        passwords = SessionPasswords()
        tasks: list[asyncio.Task[Any]] = []

        def spawn(coro: Coroutine[Any, Any, Any]) -> None:
            tasks.append(asyncio.ensure_future(coro))

        hosts = SessionHosts(
            ask=ask,
            notify=rec,
            desktop=rec,
            runner=rec,
            spawn=spawn,
            passwords=passwords,
            ssh_config=lambda: SshConfig(control_dir=tmp_path / "cm"),
            sleep=rec.sleep,
        )
        chosen = settings or Settings(editor_command="my-editor {folder_uri}")
        editor = EditorOpener(
            hosts,
            ask=ask,
            notify=rec,
            desktop=rec,
            runner=rec,
            spawn=spawn,
            settings=lambda: chosen,
        )
        return Parts(hosts, editor, rec, passwords, tasks)

    return make


async def test_the_include_question_is_asked_once_while_everything_else_goes_on(
    parts: Any, isolated_home: Path
) -> None:
    answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    ask = ScriptedAsk(answer)
    p = parts(ask)
    p.up(ready())  # the ready hook and a Connect click arrive together
    p.editor.open(ready())
    ticks = 0
    while not ask.asked or ticks < 5:  # other work (a refresh) keeps running meanwhile
        ticks += 1
        await asyncio.sleep(0.01)
    assert len(ask.asked) == 1 and "+Include ~/.ssh/clearml-tray/config" in ask.asked[0].detail
    assert not (isolated_home / ".ssh" / "config").exists()  # nothing before the answer
    answer.set_result(0)  # "Add the line"
    await p.settle()
    assert "Include ~/.ssh/clearml-tray/config" in (isolated_home / ".ssh/config").read_text()
    assert p.rec.started == [
        ["my-editor", "vscode-remote://ssh-remote+clearml-01234567/root"],
    ]
    (login,) = [k for k, argv in enumerate(p.rec.ran) if "ControlMaster=yes" in argv]
    assert p.rec.ran[login][-1] == "clearml-01234567"
    assert p.rec.ran[login][p.rec.ran[login].index("-p") + 1] == "8022"
    assert not (isolated_home / ".ssh" / "config.lock").exists()
    # The login got a one-time token for our askpass helper, which asks the tray: the
    # password is in no argv and no environment, and the grant is gone once the login ran.
    env = p.rec.envs[login]
    assert env["SSH_ASKPASS"].endswith("clearml-tray-askpass")
    assert env["SSH_ASKPASS_REQUIRE"] == "force" and env["CLEARML_TRAY_ASKPASS_TOKEN"]
    assert not any("pw-session" in arg for argv in p.rec.ran for arg in argv)
    assert not any("pw-session" in value for env in p.rec.envs for value in env.values())
    assert len(p.passwords) == 0


async def test_declining_the_include_changes_nothing_and_says_why(
    parts: Any, isolated_home: Path
) -> None:
    p = parts(ScriptedAsk(1))
    p.editor.open(ready())
    await p.settle()
    assert not (isolated_home / ".ssh" / "config").exists()
    assert not (isolated_home / ".ssh" / "clearml-tray" / "config").exists()
    assert p.rec.started == [] and p.rec.notices[-1][1] == "SSH config not changed"


async def test_a_reconnect_logs_in_again_with_a_fresh_host_key(
    parts: Any, isolated_home: Path
) -> None:
    p = parts(ScriptedAsk(0))
    p.hosts.tunnel_up(ready(), "pw")
    await p.settle()
    assert await p.hosts.prepare_host(ready()) == "clearml-01234567"
    p.hosts.masters["clearml-01234567"] = isolated_home / ".ssh" / "config"  # the login worked
    known = SshConfig().known_hosts_for("clearml-01234567")
    known.write_text("[127.0.0.1]:8022 ssh-ed25519 AAAAold\n")
    assert await p.hosts.prepare_host(ready()) == "clearml-01234567"  # same tunnel: nothing new
    assert known.exists()
    assert await p.hosts.prepare_host(ready(generation=2)) == "clearml-01234567"
    await p.settle()
    assert not known.exists()  # the key of the old tunnel is forgotten
    assert p.rec.ran[-3][3:5] == ["-O", "exit"]  # the dead master closed...
    assert "-G" in p.rec.ran[-2]  # (how ssh resolves the alias: its proxies)
    assert "ControlMaster=yes" in p.rec.ran[-1]  # ...and a new login made


async def test_two_sessions_on_one_local_port_keep_separate_host_keys(
    parts: Any, isolated_home: Path
) -> None:
    first, second = ready(SID, 8022), replace(ready(OTHER, 8022), key="other")
    p = parts(ScriptedAsk(0))
    await p.hosts.prepare_host(first)
    await p.hosts.prepare_host(second)
    managed = (isolated_home / ".ssh" / "clearml-tray" / "config").read_text()
    assert "UserKnownHostsFile" in managed and "StrictHostKeyChecking accept-new" in managed
    files = [line.split()[1] for line in managed.splitlines() if "UserKnownHostsFile" in line]
    assert len(set(files)) == 2 and all(Path(f).name.startswith("clearml-") for f in files)
    assert managed.startswith("# managed by ClearML Session Tray.")  # no doubled "# #"


async def test_copy_ssh_gives_the_alias_that_needs_no_password(parts: Any) -> None:
    p = parts(ScriptedAsk(0))
    p.hosts.copy_ssh(ready())
    await p.settle()
    assert p.rec.copied == ["ssh clearml-01234567"]


async def test_a_session_without_a_live_tunnel_loses_its_block_login_and_password(
    parts: Any, isolated_home: Path
) -> None:
    p = parts(ScriptedAsk(0))
    p.up(ready())
    await p.settle()
    p.hosts.masters["clearml-01234567"] = isolated_home / ".ssh" / "config"
    managed = isolated_home / ".ssh" / "clearml-tray" / "config"
    assert "Host clearml-01234567" in managed.read_text()
    p.hosts.keep_only(set())
    await p.settle()
    assert "Host clearml-01234567" not in managed.read_text()
    assert p.rec.ran[-1][3:5] == ["-O", "exit"] and len(p.passwords) == 0
    assert p.hosts.host_generation(SID) == 0


async def test_not_now_to_remote_ssh_opens_no_editor_and_is_not_asked_twice_at_once(
    parts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from tray_app.core.tunnels.editors import find_editor

    code = tmp_path / "bin" / "code"
    code.parent.mkdir()
    code.write_text("#!/bin/sh\n")
    code.chmod(0o755)
    monkeypatch.setenv("PATH", f"{code.parent}{os.pathsep}{os.environ['PATH']}")
    ask = ScriptedAsk(1, 0)  # "Not now" to Remote-SSH, then "Add the line"
    p = parts(ask, Settings())  # the editor found on PATH: our stand-in `code`
    editor = find_editor()
    assert editor is not None and editor.kind == "code"
    p.editor.check_soon()  # at attach: the offer comes early...
    await p.settle()
    p.editor.open(ready())  # ...and the ready tunnel does not ask again right away
    await p.settle()
    assert [q.choices for q in ask.asked] == [("Install", "Not now"), ("Add the line", "Cancel")]
    assert not any(argv[:1] == [str(code)] and "--new-window" in argv for argv in p.rec.started)
    assert p.rec.notices[-1][1] == "VS Code was not opened"


async def test_the_include_question_up_front_names_its_purpose_and_a_cancel_can_be_undone(
    parts: Any, isolated_home: Path
) -> None:
    ask = ScriptedAsk(1, 0)  # Cancel, then (through the notice's button) "Add the line"
    p = parts(ask)
    again: list[int] = []
    assert not await p.hosts.include_up_front(
        "Connect in VS Code to “gpu box (01234567)”", lambda: again.append(1)
    )
    (question,) = ask.asked
    assert question.title == "Let VS Code reach your ClearML sessions"
    assert question.text.startswith("Connect in VS Code to “gpu box (01234567)”")
    # A notice that expires (not critical), with a button that asks again.
    assert p.rec.notices[-1][:2] == ("info", "SSH config not changed")
    assert p.rec.critical[-1] is False
    ((label, press),) = p.rec.buttons[-1]
    assert label == "Connect"
    press()
    assert again == [1]
    # Meanwhile the tunnel of that Connect comes up: no second question in the same flow.
    assert await p.hosts.prepare_host(ready()) is None
    assert len(ask.asked) == 1
    # Asked again (the button), and agreed: the line is added, the Host block follows.
    assert await p.hosts.include_up_front("Connect in VS Code to “gpu box (01234567)”")
    assert "Include ~/.ssh/clearml-tray/config" in (isolated_home / ".ssh/config").read_text()
    assert await p.hosts.prepare_host(ready()) == "clearml-01234567"
    assert len(ask.asked) == 2
    # Once the line is there, nothing is asked any more.
    assert await p.hosts.include_up_front("Starting “cpu” and opening it in VS Code")
    assert len(ask.asked) == 2


async def test_a_login_that_fails_while_the_sshd_comes_back_is_tried_again_quietly(
    parts: Any, isolated_home: Path
) -> None:
    p = parts(ScriptedAsk(0))
    p.rec.codes = [255]  # the first try meets a machine whose sshd is not back yet
    p.up(ready(generation=2))
    await p.settle()
    logins = [argv for argv in p.rec.ran if "ControlMaster=yes" in argv]
    assert len(logins) == 2 and p.rec.slept == [2.0]
    assert "clearml-01234567" in p.hosts.masters
    assert not any(title == "Could not log in ahead of the editor" for _, title, _ in p.rec.notices)
    assert p.rec.copied == []  # the password went nowhere


async def test_a_login_that_keeps_failing_is_said_once(parts: Any, isolated_home: Path) -> None:
    p = parts(ScriptedAsk(0))
    p.rec.code = 255
    p.up(ready())
    await p.settle()
    logins = [argv for argv in p.rec.ran if "ControlMaster=yes" in argv]
    assert len(logins) == 3
    titles = [title for _, title, _ in p.rec.notices]
    assert titles.count("Could not log in ahead of the editor") == 1
    assert p.rec.copied == ["pw-session"]


async def test_a_failed_login_puts_the_password_in_the_clipboard_for_30_seconds_only(
    parts: Any, isolated_home: Path
) -> None:
    p = parts(ScriptedAsk(0))
    p.rec.code = 255  # the ssh login ahead of the editor fails
    p.hosts.tunnel_up(ready(), "pw-session")
    await p.settle()
    assert await p.hosts.prepare_host(ready()) == "clearml-01234567"
    await p.settle()
    assert p.rec.secrets_copied == [("pw-session", 30.0)]  # taken out again, if still there
    assert any("30 seconds" in body for _kind, _title, body in p.rec.notices)
