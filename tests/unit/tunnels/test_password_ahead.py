"""The session password handed to clearml-session's ssh: held, granted for the login the CLI
names, used once, gone with the child; and the shim with a real `ssh -G`.

Through the registry with a scripted child (what the CLI's environment says, what the tray
holds while it starts), and the shim run as the CLI runs it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.tunnel_rig import Rig

from tray_app.core.server.errors import ClearMLUnavailable
from tray_app.core.server.models import Session, SessionState
from tray_app.core.tunnels import password_ahead
from tray_app.core.tunnels.password_ahead import PasswordAhead
from tray_app.core.tunnels.session_passwords import SessionPasswords
from tray_app.core.tunnels.ssh_config import SshConfig

SID = "0123456789abcdef0123456789abcdef"
HERE = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"
# What the CLI prints right before it starts its ssh (the login the password is granted for).
STARTING = "Starting SSH tunnel to root@127.0.3.9, port 10022\n"
CLI_SSH = ["ssh", "-C", "root@127.0.3.9", "-p", "10022", "-L", "8022:localhost:10022"]


class Server:
    def __init__(self, password: str = "s3cret-pw", pinned: bool = False) -> None:
        self.password, self.pinned = password, pinned
        self.asked = 0

    async def ssh_password(self, session_id: str) -> str:
        self.asked += 1
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


class _Silent(Server):
    async def ssh_password(self, session_id: str) -> str:
        await asyncio.sleep(3600)
        return ""


def _session() -> Session:
    return Session(
        id=SID,
        name="gpu box",
        status="in_progress",
        state=SessionState.RUNNING,
        public_address="127.0.3.9",
        ssh_port=10022,
    )


def _ahead(server: Server, grants: SessionPasswords, tmp_path: Path, usable: bool = True) -> Any:
    return PasswordAhead(
        server=lambda: server,
        passwords=grants,
        ssh_config=lambda: SshConfig(control_dir=tmp_path / "cm"),
        usable=lambda: usable,
        socket=lambda: "/run/user/1000/clearml-tray/instance.sock",
    )


def _exists(path: Path) -> bool:
    return path.exists()


def _mode(path: Path) -> int:
    return path.stat().st_mode


async def test_an_attach_hands_the_clis_ssh_the_password_so_the_cli_does_not_wait(
    make_rig: Callable[..., Rig],
    tmp_path: Path,
) -> None:
    server, grants = Server(), SessionPasswords(argv_of={4242: CLI_SSH}.get)
    ahead = _ahead(server, grants, tmp_path)
    rig = make_rig(ahead=ahead, session=lambda sid: _session())
    rig.registry.attach(SID, "gpu box")
    await rig.settle()
    env = rig.child.spec.env
    marker = Path(env["CLEARML_TRAY_LOGIN_MARKER"])
    # The CLI started at once, told (its environment) to wait on the marker, with a one-time
    # token for our helper and where to ask; the password was asked for meanwhile.
    assert marker.parent == tmp_path / "cm" and _exists(marker) and server.asked == 1
    assert env["CLEARML_TRAY_ASKPASS_SOCKET"].endswith("instance.sock")
    token = env["CLEARML_TRAY_ASKPASS_TOKEN"]
    assert "s3cret-pw" not in " ".join(env.values())
    assert grants.answer(token, "root@127.0.3.9's password: ", 4242).password is None  # not yet
    # The CLI names its login: granted for it, the note says "use the helper", the ssh goes.
    rig.child.print(STARTING)
    await rig.settle()
    note = marker.with_suffix(".askpass")
    assert not _exists(marker) and _exists(note) and _mode(note) & 0o077 == 0
    assert note.read_text() == ""  # nothing secret beside the marker
    assert ahead.sessions() == {SID}
    assert grants.answer(token, "root@127.0.3.9's password: ", 4242).password == "s3cret-pw"
    assert rig.rec.ups == []  # the tray itself logs in nowhere
    # The tunnel ends: nothing of the hold is left.
    rig.registry.disconnect(rig.only().key)
    await rig.settle()
    assert not _exists(note) and len(grants) == 0 and ahead.sessions() == set()


async def test_a_new_session_is_handed_its_password_when_its_cli_starts_the_tunnel(
    make_rig: Callable[..., Rig],
    tmp_path: Path,
) -> None:
    from tray_app.core.settings.presets import Preset

    server, grants = Server(), SessionPasswords()
    rig = make_rig(ahead=_ahead(server, grants, tmp_path))
    launched = await rig.registry.create(Preset(name="p", queue="sessions"))
    marker = Path(rig.child.spec.env["CLEARML_TRAY_LOGIN_MARKER"])
    assert launched.key and _exists(marker) and server.asked == 0  # its first ssh waits...
    rig.child.print((HERE / "real_launch_retry.txt").read_text(encoding="utf-8"))
    await rig.settle()
    sid = rig.only().session_id
    assert sid and not _exists(marker) and server.asked == 1  # ...until the password is there
    assert _exists(marker.with_suffix(".askpass")) and len(grants) == 1


@pytest.mark.parametrize(
    "server",
    [Server(pinned=True), Server(password=""), _Unreachable(), _VaultsUnknown(), _Silent()],
    ids=[
        "host keys pinned by the server",
        "no password known",
        "server unreachable",
        "vault lookup failed",
        "server silent",
    ],
)
async def test_without_the_password_ahead_the_clis_ssh_prompts_as_before(
    make_rig: Callable[..., Rig],
    tmp_path: Path,
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(password_ahead, "HAND_OVER_TIMEOUT_S", 0.2)
    grants = SessionPasswords()
    ahead = _ahead(server, grants, tmp_path)
    rig = make_rig(ahead=ahead, session=lambda sid: _session())
    rig.registry.attach(SID, "gpu box")
    await rig.settle()
    rig.child.print(STARTING)
    await rig.settle()
    assert len(rig.children.children) == 1 and rig.rec.kinds() == ["progress"]
    assert not list((tmp_path / "cm").iterdir())  # not held back, and no note to use
    assert len(grants) == 1 and ahead.sessions() == set()  # a reserved token, never granted
    rig.registry.disconnect(rig.only().key)
    await rig.settle()
    assert len(grants) == 0


async def test_where_it_cannot_help_nothing_is_held(
    make_rig: Callable[..., Rig],
    tmp_path: Path,
) -> None:
    """No shim on the CLI's PATH, or an OpenSSH before 8.4 (no SSH_ASKPASS_REQUIRE: ssh would
    prompt on the CLI's terminal anyway): the CLI's ssh does not wait for anything."""
    server, grants = Server(), SessionPasswords()
    rig = make_rig(
        ahead=_ahead(server, grants, tmp_path, usable=False), session=lambda s: _session()
    )
    rig.registry.attach(SID, "gpu box")
    await rig.settle()
    assert "CLEARML_TRAY_LOGIN_MARKER" not in rig.child.spec.env
    assert "CLEARML_TRAY_ASKPASS_TOKEN" not in rig.child.spec.env
    assert server.asked == 0 and len(grants) == 0


# --- the shim, as the CLI runs it ---------------------------------------------------------------


def _shim(tmp_path: Path) -> Path:
    from tray_app.core.tunnels.ssh_master import write_ssh_shim

    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    folder = write_ssh_shim(tmp_path / "da ta")
    assert folder is not None and os.access(folder / "ssh", os.X_OK)
    assert os.access(folder / "clearml-tray-askpass", os.X_OK)
    assert write_ssh_shim(tmp_path / "da ta") == folder  # idempotent
    return folder


def _options(folder: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    """`ssh -G` prints the options ssh would use, as the shim ran it."""
    from tray_app.core.tunnels.ssh_master import resolved_options

    done = subprocess.run(
        [str(folder / "ssh"), "-G", *args], capture_output=True, text=True, timeout=20, env=env,
        check=True,
    )  # fmt: skip
    return resolved_options(done.stdout)


def test_the_shim_waits_then_gives_one_ssh_our_helper_and_the_logged_in_line(
    tmp_path: Path,
) -> None:
    from tray_app.core.tunnels.ssh_master import LOGGED_IN_LINE

    folder = _shim(tmp_path)
    # Without a marker (any ssh but a CLI's first): ssh exactly as asked.
    plain = _options(folder, dict(os.environ), "-p", "10022", "root@127.0.3.9")
    assert plain["numberofpasswordprompts"] == "3" and plain["permitlocalcommand"] == "no"
    # While the tray fetches the password (the marker exists), the shim's ssh waits...
    marker = tmp_path / "login-attach-1.pending"
    marker.touch()
    env = {**os.environ, "CLEARML_TRAY_LOGIN_MARKER": str(marker)}
    held = subprocess.Popen(
        [str(folder / "ssh"), "-G", "h"], env=env, stdout=subprocess.PIPE, text=True
    )
    with pytest.raises(subprocess.TimeoutExpired):
        held.wait(0.5)
    note = tmp_path / "login-attach-1.askpass"
    note.touch(mode=0o600)
    marker.unlink()
    assert held.wait(10) == 0
    # ...then asks no prompt but our helper, for one try, and says when it is logged in.
    assert held.stdout is not None
    from tray_app.core.tunnels.ssh_master import resolved_options

    used = resolved_options(held.stdout.read())
    assert used["numberofpasswordprompts"] == "1" and used["permitlocalcommand"] == "yes"
    assert used["localcommand"] == f"echo '{LOGGED_IN_LINE}'"
    assert not note.exists()  # used once: a reconnect later prompts as the CLI expects
    assert _options(folder, env, "h")["numberofpasswordprompts"] == "3"


def test_the_shim_runs_a_proxied_ssh_with_its_proxy_rewritten(tmp_path: Path) -> None:
    """A ProxyJump in the user's config for the session's machine: its jump ssh runs without
    the askpass variables, in batch mode, whether or not the password was handed over."""
    folder = _shim(tmp_path)
    config = tmp_path / "config"  # the user's ~/.ssh/config (ssh reads it from the passwd home)
    config.write_text("Host 127.0.3.*\n  ProxyJump jumper@127.0.0.1:2222\n")
    for note in (False, True):
        marker = tmp_path / "login-attach-2.pending"
        if note:
            marker.with_suffix(".askpass").touch(mode=0o600)
        env = {**os.environ, "CLEARML_TRAY_LOGIN_MARKER": str(marker)}
        options = _options(folder, env, "-F", str(config), "-p", "1", "root@127.0.3.9")
        assert options.get("proxyjump", "none") == "none"
        command = options["proxycommand"]
        assert command.startswith("env -u SSH_ASKPASS -u SSH_ASKPASS_REQUIRE")
        assert "-l jumper -p 2222 -o BatchMode=yes -W '[%h]:%p' 127.0.0.1" in command
        assert options["numberofpasswordprompts"] == ("1" if note else "3")
