"""The connect workflow without Qt: scripted answers, a recording desktop and runner."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tray_app.core.ports import Question
from tray_app.core.settings.secrets import session_password_key
from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.connect import ConnectFlow
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
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
    copied: list[str] = field(default_factory=list)
    started: list[list[str]] = field(default_factory=list)
    ran: list[list[str]] = field(default_factory=list)
    envs: list[Mapping[str, str]] = field(default_factory=list)
    code: int = 0

    def notify(self, kind: str, title: str, body: str, buttons: Any = (), **kw: Any) -> bool:
        self.notices.append((kind, title, body))
        return True

    def copy(self, text: str) -> None:
        self.copied.append(text)

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
        return self.code, ""


class Tunnels:
    def __init__(self, *infos: TunnelInfo) -> None:
        self.infos = {i.key: i for i in infos}
        self.attached: list[str] = []
        self.promoted: list[str] = []
        self.envs: list[dict[str, str]] = []
        self.held: list[bool] = []
        self.progress: list[str] = []

    def tunnels(self) -> Mapping[str, TunnelInfo]:
        return self.infos

    def attach(
        self,
        session_id: str,
        label: str = "",
        *,
        prewarm: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> str:
        self.attached.append(session_id)
        self.envs.append(dict(env or {}))
        marker = (env or {}).get("CLEARML_TRAY_LOGIN_MARKER")
        if marker:  # the password is still being fetched when the CLI starts
            self.held.append(Path(marker).exists())
        return "attach-1"

    def promote(self, key: str) -> TunnelInfo | None:
        self.promoted.append(key)
        self.infos[key] = replace(self.infos[key], prewarmed=False)
        return self.infos[key]

    def show_progress(self, key: str) -> None:
        self.progress.append(key)

    def password(self, key: str) -> str | None:
        return "pw-" + key


def ready(sid: str = SID, port: int = 8022, generation: int = 1) -> TunnelInfo:
    return TunnelInfo(
        sid, sid, TunnelState.READY, local_ssh_port=port, user="root", generation=generation
    )


@pytest.fixture
def flow_parts(isolated_home: Path, tmp_path: Path) -> Any:
    tasks: list[asyncio.Task[Any]] = []

    def make(
        ask: ScriptedAsk, *infos: TunnelInfo, ahead: Any = None, session: Any = None
    ) -> tuple[ConnectFlow, Recorder, Tunnels]:
        rec = Recorder()
        tunnels = Tunnels(*infos)

        def spawn(coro: Coroutine[Any, Any, Any]) -> None:
            tasks.append(asyncio.ensure_future(coro))

        flow = ConnectFlow(
            tunnels,
            ask=ask,
            notify=rec,
            desktop=rec,
            runner=rec,
            spawn=spawn,
            settings=lambda: Settings(editor_command="my-editor {folder_uri}"),
            secrets=lambda: _MemorySecrets(),  # type: ignore[arg-type,return-value]
            ssh_config=lambda: SshConfig(control_dir=tmp_path / "cm"),
            password_ahead=ahead,
            session=session or (lambda sid: None),
        )
        return flow, rec, tunnels

    async def settle() -> None:
        while any(not t.done() for t in tasks):
            await asyncio.gather(*tasks)

    make.settle = settle  # type: ignore[attr-defined]
    return make


class _MemorySecrets:
    def __init__(self) -> None:
        self.store: dict[str, str] = {}

    def set(self, name: str, value: str) -> str:
        self.store[name] = value
        return "memory"

    def delete(self, name: str) -> None:
        self.store.pop(name, None)


async def test_the_include_question_is_asked_once_while_everything_else_goes_on(
    flow_parts: Any, isolated_home: Path
) -> None:
    answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
    ask = ScriptedAsk(answer)
    flow, rec, _ = flow_parts(ask, ready())
    flow.tunnel_up(ready())  # the ready hook and a Connect click arrive together
    flow.open_editor(ready())
    ticks = 0
    while not ask.asked or ticks < 5:  # other work (a refresh) keeps running meanwhile
        ticks += 1
        await asyncio.sleep(0.01)
    assert len(ask.asked) == 1 and "+Include ~/.ssh/clearml-tray/config" in ask.asked[0].detail
    assert not (isolated_home / ".ssh" / "config").exists()  # nothing before the answer
    answer.set_result(0)  # "Add the line"
    await flow_parts.settle()
    assert "Include ~/.ssh/clearml-tray/config" in (isolated_home / ".ssh/config").read_text()
    assert rec.started == [
        ["my-editor", "vscode-remote://ssh-remote+clearml-01234567/root"],
    ]
    login = [argv for argv in rec.ran if "ControlMaster=yes" in argv]
    assert len(login) == 1 and login[0][-1] == "clearml-01234567"
    assert not (isolated_home / ".ssh" / "config.lock").exists()


async def test_declining_the_include_changes_nothing_and_says_why(
    flow_parts: Any, isolated_home: Path
) -> None:
    flow, rec, _ = flow_parts(ScriptedAsk(1), ready())
    flow.open_editor(ready())
    await flow_parts.settle()
    assert not (isolated_home / ".ssh" / "config").exists()
    assert not (isolated_home / ".ssh" / "clearml-tray" / "config").exists()
    assert rec.started == [] and rec.notices[-1][1] == "SSH config not changed"


async def test_a_reconnect_logs_in_again_with_a_fresh_host_key(
    flow_parts: Any, isolated_home: Path
) -> None:
    flow, rec, _ = flow_parts(ScriptedAsk(0), ready())
    assert await flow.prepare_host(ready()) == "clearml-01234567"
    await flow_parts.settle()
    flow.masters["clearml-01234567"] = isolated_home / ".ssh" / "config"  # the login succeeded
    known = SshConfig().known_hosts_for("clearml-01234567")
    known.write_text("[127.0.0.1]:8022 ssh-ed25519 AAAAold\n")
    assert await flow.prepare_host(ready()) == "clearml-01234567"  # same tunnel: nothing new
    assert known.exists()
    assert await flow.prepare_host(ready(generation=2)) == "clearml-01234567"
    await flow_parts.settle()
    assert not known.exists()  # the key of the old tunnel is forgotten
    assert rec.ran[-2][3:5] == ["-O", "exit"]  # the dead master closed...
    assert "ControlMaster=yes" in rec.ran[-1]  # ...and a new login made


async def test_two_sessions_on_one_local_port_keep_separate_host_keys(
    flow_parts: Any, isolated_home: Path
) -> None:
    first, second = ready(SID, 8022), replace(ready(OTHER, 8022), key="other")
    flow, _, _ = flow_parts(ScriptedAsk(0), first, second)
    await flow.prepare_host(first)
    await flow.prepare_host(second)
    managed = (isolated_home / ".ssh" / "clearml-tray" / "config").read_text()
    assert "UserKnownHostsFile" in managed and "StrictHostKeyChecking accept-new" in managed
    files = [line.split()[1] for line in managed.splitlines() if "UserKnownHostsFile" in line]
    assert len(set(files)) == 2 and all(Path(f).name.startswith("clearml-") for f in files)
    assert managed.startswith("# managed by ClearML Session Tray.")  # no doubled "# #"


async def test_connect_attaches_when_there_is_no_tunnel_and_opens_at_once_when_ready(
    flow_parts: Any,
) -> None:
    flow, rec, tunnels = flow_parts(ScriptedAsk(0))
    flow.connect(SID, "gpu box")
    flow.connect(SID, "gpu box")  # a second click while it starts: still one attach
    await flow_parts.settle()
    assert tunnels.attached == [SID]
    tunnels.infos[SID] = ready()
    flow.connect(SID)
    await flow_parts.settle()
    assert tunnels.attached == [SID] and rec.started[-1][0] == "my-editor"


async def test_copy_ssh_gives_the_alias_that_needs_no_password(flow_parts: Any) -> None:
    flow, rec, _ = flow_parts(ScriptedAsk(0), ready())
    flow.copy_ssh(ready())
    await flow_parts.settle()
    assert rec.copied == ["ssh clearml-01234567"]


async def test_not_now_to_remote_ssh_opens_no_editor_and_is_not_asked_twice_at_once(
    flow_parts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from tray_app.core.tunnels.editors import find_editor

    code = tmp_path / "bin" / "code"
    code.parent.mkdir()
    code.write_text("#!/bin/sh\n")
    code.chmod(0o755)
    monkeypatch.setenv("PATH", f"{code.parent}{os.pathsep}{os.environ['PATH']}")
    ask = ScriptedAsk(1, 0)  # "Not now" to Remote-SSH, then "Add the line"
    flow, rec, _ = flow_parts(ask, ready())
    flow._settings = lambda: Settings()  # the editor found on PATH: our stand-in `code`
    editor = find_editor()
    assert editor is not None and editor.kind == "code"
    flow.check_editor_soon()  # at attach: the offer comes early...
    await flow_parts.settle()
    flow.open_editor(ready())  # ...and the ready tunnel does not ask again right away
    await flow_parts.settle()
    assert [q.choices for q in ask.asked] == [("Install", "Not now"), ("Add the line", "Cancel")]
    assert not any(argv[:1] == [str(code)] and "--new-window" in argv for argv in rec.started)
    assert rec.notices[-1][1] == "VS Code was not opened"


async def test_connect_takes_over_a_prewarmed_ready_tunnel_and_opens_the_editor_at_once(
    flow_parts: Any,
) -> None:
    flow, rec, tunnels = flow_parts(ScriptedAsk(0), replace(ready(), prewarmed=True))
    flow.connect(SID, "Interactive Session")
    await flow_parts.settle()
    assert tunnels.promoted == [SID] and tunnels.attached == []  # no second clearml-session
    assert rec.started == [["my-editor", "vscode-remote://ssh-remote+clearml-01234567/root"]]


async def test_connect_on_a_prewarmed_tunnel_still_coming_up_waits_for_it(flow_parts: Any) -> None:
    coming = TunnelInfo(SID, SID, TunnelState.CONNECTING, prewarmed=True)
    flow, rec, tunnels = flow_parts(ScriptedAsk(), coming)
    flow.connect(SID)
    await flow_parts.settle()
    # Taken over (the launcher posts its progress notice and opens the editor when ready).
    assert tunnels.promoted == [SID] and tunnels.attached == [] and rec.started == []


async def test_connect_again_while_connecting_shows_the_progress_notice(flow_parts: Any) -> None:
    flow, _, tunnels = flow_parts(ScriptedAsk(), TunnelInfo(SID, SID, TunnelState.CONNECTING))
    flow.connect(SID)
    await flow_parts.settle()
    assert tunnels.progress == [SID] and tunnels.promoted == [] and tunnels.attached == []


class Server:
    def __init__(self, password: str = "s3cret-pw", pinned: bool = False) -> None:
        self.password, self.pinned = password, pinned

    async def ssh_password(self, session_id: str) -> str:
        return self.password

    async def host_keys_pinned(self) -> bool:
        return self.pinned


def _session() -> Any:
    from tray_app.core.server.models import Session, SessionState

    return Session(
        id=SID,
        name="gpu box",
        status="in_progress",
        state=SessionState.RUNNING,
        public_address="127.0.3.9",
        ssh_port=10022,
    )


def _ahead(server: Server, secrets: _MemorySecrets, tmp_path: Path) -> Any:
    from tray_app.core.tunnels.password_ahead import PasswordAhead

    return PasswordAhead(
        server=lambda: server,
        secrets=lambda: secrets,  # type: ignore[arg-type,return-value]
        ssh_config=lambda: SshConfig(control_dir=tmp_path / "cm"),
    )


async def test_connect_hands_the_clis_ssh_the_password_so_the_cli_does_not_wait(
    flow_parts: Any, tmp_path: Path
) -> None:
    secrets = _MemorySecrets()
    ahead = _ahead(Server(), secrets, tmp_path)
    flow, rec, tunnels = flow_parts(ScriptedAsk(), ahead=ahead, session=lambda sid: _session())
    flow.connect(SID, "gpu box")
    await flow_parts.settle()
    # The CLI started at once, told (its environment) to wait for the password in its ssh...
    (cli_env,) = tunnels.envs
    marker = Path(cli_env["CLEARML_TRAY_LOGIN_MARKER"])
    assert marker.parent == tmp_path / "cm" and tunnels.held == [True]
    assert not await asyncio.to_thread(marker.exists)  # ...which is there: its ssh goes on
    # The password is in the keyring; beside the marker, only the entry's name, for one ssh.
    assert secrets.store == {session_password_key(SID): "s3cret-pw"}
    note = marker.with_suffix(".askpass")
    assert note.read_text() == session_password_key(SID) and note.stat().st_mode & 0o077 == 0
    assert rec.ran == [] and tunnels.attached == [SID]  # the tray itself logs in nowhere
    # The tunnel ends: the password leaves the keyring.
    tunnels.infos[SID] = TunnelInfo(SID, SID, TunnelState.CLOSED)
    flow.tunnels_changed()
    await flow_parts.settle()
    assert secrets.store == {} and ahead.sessions() == set()


class _Unreachable(Server):
    async def ssh_password(self, session_id: str) -> str:
        raise ConnectionError("the server went away")


@pytest.mark.parametrize(
    "server",
    [Server(pinned=True), Server(password=""), _Unreachable()],
    ids=["host keys pinned by the server", "no password known", "server unreachable"],
)
async def test_without_the_password_ahead_the_clis_ssh_prompts_as_before(
    flow_parts: Any, tmp_path: Path, server: Server
) -> None:
    secrets = _MemorySecrets()
    ahead = _ahead(server, secrets, tmp_path)
    flow, rec, tunnels = flow_parts(ScriptedAsk(), ahead=ahead, session=lambda sid: _session())
    flow.connect(SID, "gpu box")
    await flow_parts.settle()
    assert tunnels.attached == [SID] and rec.notices == []
    assert not list((tmp_path / "cm").iterdir())  # not held back, and no note to use
    assert secrets.store == {} and ahead.sessions() == set()


def test_the_shim_waits_then_gives_one_ssh_the_password_by_askpass(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess

    from tray_app.core.tunnels.ssh_master import write_ssh_shim

    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    folder = write_ssh_shim(tmp_path / "da ta")
    assert folder is not None and os.access(folder / "ssh", os.X_OK)
    assert os.access(folder / "clearml-tray-askpass", os.X_OK)
    assert write_ssh_shim(tmp_path / "da ta") == folder  # idempotent

    def options(env: dict[str, str]) -> str:
        """`ssh -G` prints the options ssh would use, as the shim ran it."""
        return subprocess.run(
            [str(folder / "ssh"), "-G", "-p", "10022", "root@127.0.3.9"],
            capture_output=True, text=True, timeout=20, check=True, env=env,
        ).stdout  # fmt: skip

    # Without a marker (any ssh but a CLI's first): ssh exactly as asked.
    assert "numberofpasswordprompts 3" in options(dict(os.environ))
    # While the tray fetches the password (the marker exists), the shim's ssh waits...
    marker = tmp_path / "login-01234567.pending"
    marker.touch()
    env = {**os.environ, "CLEARML_TRAY_LOGIN_MARKER": str(marker)}
    held = subprocess.Popen(
        [str(folder / "ssh"), "-G", "h"], env=env, stdout=subprocess.PIPE, text=True
    )
    with pytest.raises(subprocess.TimeoutExpired):
        held.wait(0.5)
    note = tmp_path / "login-01234567.askpass"
    note.write_text("session-password/0123456789abcdef")
    marker.unlink()
    assert held.wait(10) == 0
    # ...then, told the keyring entry, asks no prompt but our helper, for one try.
    assert held.stdout is not None and "numberofpasswordprompts 1" in held.stdout.read()
    assert not note.exists()  # used once: a reconnect later prompts as the CLI expects
    assert "numberofpasswordprompts 3" in options(env)


async def test_without_the_shim_on_the_clis_path_nothing_is_held_or_stored(
    flow_parts: Any, tmp_path: Path
) -> None:
    from tray_app.core.tunnels.password_ahead import PasswordAhead

    secrets = _MemorySecrets()
    ahead = PasswordAhead(
        server=lambda: Server(),
        shim_in_use=lambda: False,  # no ssh or no POSIX shell: the shim was not written
        secrets=lambda: secrets,  # type: ignore[arg-type,return-value]
        ssh_config=lambda: SshConfig(control_dir=tmp_path / "cm"),
    )
    flow, _, tunnels = flow_parts(ScriptedAsk(), ahead=ahead, session=lambda sid: _session())
    flow.connect(SID, "gpu box")
    await flow_parts.settle()
    assert tunnels.envs == [{}] and tunnels.attached == [SID]
    assert secrets.store == {} and ahead.sessions() == set()
