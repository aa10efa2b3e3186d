"""The session password handed to clearml-session's ssh: held, handed over once, forgotten.

Through the registry with a scripted child (what the CLI's environment says, what is in the
keyring and beside the marker while it starts), and the shim with a real `ssh -G`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from support.tunnel_rig import Rig

from tray_app.core.server.errors import ClearMLUnavailable
from tray_app.core.server.models import Session, SessionState
from tray_app.core.settings.secrets import session_password_key
from tray_app.core.tunnels.password_ahead import PasswordAhead
from tray_app.core.tunnels.ssh_config import SshConfig

SID = "0123456789abcdef0123456789abcdef"
HERE = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"


class Server:
    def __init__(self, password: str = "s3cret-pw", pinned: bool = False) -> None:
        self.password, self.pinned = password, pinned

    async def ssh_password(self, session_id: str) -> str:
        return self.password

    async def host_keys_pinned(self) -> bool:
        return self.pinned


class _Unreachable(Server):
    async def ssh_password(self, session_id: str) -> str:
        raise ConnectionError("the server went away")


class _VaultsUnknown(Server):
    """users.get_vaults failed (a 502, a timeout): whether keys are pinned is not known."""

    async def host_keys_pinned(self) -> bool:
        raise ClearMLUnavailable("The ClearML server answered HTTP 502 to users.get_vaults")


class MemorySecrets:
    def __init__(self) -> None:
        self.store: dict[str, str] = {}

    def set(self, name: str, value: str) -> str:
        self.store[name] = value
        return "memory"

    def delete(self, name: str) -> None:
        self.store.pop(name, None)


def _session() -> Session:
    return Session(
        id=SID,
        name="gpu box",
        status="in_progress",
        state=SessionState.RUNNING,
        public_address="127.0.3.9",
        ssh_port=10022,
    )


def _ahead(
    server: Server, secrets: MemorySecrets, tmp_path: Path, shim: bool = True
) -> PasswordAhead:
    return PasswordAhead(
        server=lambda: server,
        secrets=secrets,  # type: ignore[arg-type]
        ssh_config=lambda: SshConfig(control_dir=tmp_path / "cm"),
        shim_in_use=lambda: shim,
    )


async def test_an_attach_hands_the_clis_ssh_the_password_so_the_cli_does_not_wait(
    make_rig: Callable[..., Rig],
    tmp_path: Path,
) -> None:
    secrets = MemorySecrets()
    ahead = _ahead(Server(), secrets, tmp_path)
    rig = make_rig(ahead=ahead, session=lambda sid: _session())
    secrets_at_start: list[dict[str, str]] = []
    rig.children.on_start = lambda child: secrets_at_start.append(dict(secrets.store))
    rig.registry.attach(SID, "gpu box")
    await rig.settle()
    marker = Path(rig.child.spec.env["CLEARML_TRAY_LOGIN_MARKER"])
    # The CLI started at once, told (its environment) to wait on the marker for the password,
    # which was fetched while it started.
    assert marker.parent == tmp_path / "cm" and secrets_at_start == [{}]
    assert not await asyncio.to_thread(marker.exists)  # handed over: its ssh goes on
    # The password is in the keyring; beside the marker, only the entry's name, for one ssh.
    assert secrets.store == {session_password_key(SID): "s3cret-pw"}
    note = marker.with_suffix(".askpass")
    assert note.read_text() == session_password_key(SID) and note.stat().st_mode & 0o077 == 0
    assert rig.rec.ups == []  # the tray itself logs in nowhere
    # The tunnel ends: the password leaves the keyring.
    rig.registry.disconnect(rig.only().key)
    await rig.settle()
    assert secrets.store == {} and ahead.sessions() == set()


async def test_a_new_session_is_handed_its_password_when_its_cli_starts_the_tunnel(
    make_rig: Callable[..., Rig],
    tmp_path: Path,
) -> None:
    from tray_app.core.settings.presets import Preset

    secrets = MemorySecrets()
    rig = make_rig(ahead=_ahead(Server(), secrets, tmp_path))
    launched = await rig.registry.create(Preset(name="p", queue="sessions"))
    marker = Path(rig.child.spec.env["CLEARML_TRAY_LOGIN_MARKER"])
    assert launched.key and await asyncio.to_thread(marker.exists)  # its first ssh waits...
    rig.child.print((HERE / "real_launch_retry.txt").read_text(encoding="utf-8"))
    await rig.settle()
    sid = rig.only().session_id
    assert sid and not await asyncio.to_thread(marker.exists)  # ...until the password is there
    assert secrets.store == {session_password_key(sid): "s3cret-pw"}


@pytest.mark.parametrize(
    "server",
    [Server(pinned=True), Server(password=""), _Unreachable(), _VaultsUnknown()],
    ids=[
        "host keys pinned by the server",
        "no password known",
        "server unreachable",
        "vault lookup failed",
    ],
)
async def test_without_the_password_ahead_the_clis_ssh_prompts_as_before(
    make_rig: Callable[..., Rig],
    tmp_path: Path,
    server: Server,
) -> None:
    secrets = MemorySecrets()
    ahead = _ahead(server, secrets, tmp_path)
    rig = make_rig(ahead=ahead, session=lambda sid: _session())
    rig.registry.attach(SID, "gpu box")
    await rig.settle()
    assert len(rig.children.children) == 1 and rig.rec.kinds() == ["progress"]
    assert not list((tmp_path / "cm").iterdir())  # not held back, and no note to use
    assert secrets.store == {} and ahead.sessions() == set()


async def test_without_the_shim_on_the_clis_path_nothing_is_held_or_stored(
    make_rig: Callable[..., Rig],
    tmp_path: Path,
) -> None:
    secrets = MemorySecrets()
    ahead = _ahead(Server(), secrets, tmp_path, shim=False)  # no ssh or no POSIX shell
    rig = make_rig(ahead=ahead, session=lambda sid: _session())
    rig.registry.attach(SID, "gpu box")
    await rig.settle()
    assert "CLEARML_TRAY_LOGIN_MARKER" not in rig.child.spec.env
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
