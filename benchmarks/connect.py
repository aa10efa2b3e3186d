"""Connect → what the user waits for: `ssh -o BatchMode=yes <alias>` answering.

The editor's ssh (and the user's) works once the tunnel is up and the tray's login to the
machine is done; the editor process starting is not the end of the wait. Every run is a real
tray on a fresh emulator with its agent and SSH endpoints (another process), the real
`clearml-session --attach`, and a stand-in editor; what is timed is the click (the menu's
`connect`) → ssh through the alias printing "ok" (benchmarks/connect_probe.py). Variants:

- cold (nothing before the click), pointed (the session's submenu opened 1.5 s before), warm
  (warm tunnels on), each with an unlocked GNOME Keyring on a private D-Bus bus;
- cold with the login keyring locked over the Secret Service API (a read or write would wait
  for the unlock prompt), and with no Secret Service on the bus at all;
- the packaged bundle (build/pyinstaller/dist, what the .deb installs), run as a desktop
  starts it with a PATH of system folders, `clearml-tray connect <id>` forwarded to it;
- `clearml-session --attach` alone on the same session (its ready line): the floor the tray
  must never be slower than.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import BUNDLE, Context, Figure, at_most, median, packaged_bundle
from benchmarks.emulator_proc import ChildEmulator
from benchmarks.logparse import _probe_env, _probe_home, attach_floor

SECTION = "connect"
TARGET_S = 1.5
BUNDLE_TARGET_S = 3.0
THINK_S = 1.5  # a session's submenu opened → "Connect in VS Code" clicked
SECRETS = "org.freedesktop.secrets"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

_NO_ACTIVATION = """<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir={tmpdir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _owner(address: str) -> bool:
    done = subprocess.run(
        ["dbus-send", f"--bus={address}", "--print-reply", "--dest=org.freedesktop.DBus",
         "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", f"string:{SECRETS}"],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    return "boolean true" in done.stdout


@contextlib.contextmanager
def keyring(kind: str, home: Path) -> Iterator[dict[str, str]]:
    """A private session bus (nothing activatable) and, unless `kind` is "none", a
    gnome-keyring-daemon on it with its login keyring in `home`: "unlocked" or "locked" (locked
    over the Secret Service API after an item was stored). The environment a tray needs."""
    for tool in ("dbus-daemon", "dbus-send", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"needs {tool} (apt-get install dbus gnome-keyring)")
    bus_dir = home / ".bus"
    bus_dir.mkdir(parents=True, exist_ok=True)
    (bus_dir / "bus.conf").write_text(_NO_ACTIVATION.format(tmpdir=bus_dir))
    procs: list[subprocess.Popen[str]] = []
    runtime = home / ".run"  # the daemon's control socket: not another keyring's (a test's)
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    try:
        bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={bus_dir / 'bus.conf'}", "--nofork",
             "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        procs.append(bus)
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        env.update(
            DBUS_SESSION_BUS_ADDRESS=address,
            PYTHON_KEYRING_BACKEND="keyring.backends.SecretService.Keyring",
        )
        if kind != "none":
            daemon = subprocess.Popen(
                ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                text=True, env={**os.environ, **env},
            )  # fmt: skip
            procs.append(daemon)
            assert daemon.stdin is not None
            daemon.stdin.write("bench keyring pw")
            daemon.stdin.close()
            deadline = time.monotonic() + 10
            while not _owner(address):
                if time.monotonic() > deadline:
                    raise RuntimeError("gnome-keyring-daemon did not come up")
                time.sleep(0.05)
            code = (
                "import keyring, secretstorage\n"
                "keyring.set_password('clearml-tray', 'preset-password/x', 'pw')\n"
                + (
                    "c = secretstorage.dbus_init()\n"
                    "secretstorage.get_default_collection(c).lock()\n"
                    if kind == "locked"
                    else ""
                )
            )
            subprocess.run(
                [sys.executable, "-c", code], env={**os.environ, **env}, check=True, timeout=60
            )
        yield env
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _probe(
    ctx: Context, name: str, mode: str, kind: str, floor: bool
) -> tuple[dict[str, Any], float | None]:
    home, record, config = _probe_home(ctx, name)
    with ChildEmulator(8, agent=True, config=config), keyring(kind, home) as keyring_env:
        env = {**_probe_env(config, home), **keyring_env}
        argv = [sys.executable, "-m", "benchmarks.connect_probe", "--config", str(config)]
        argv += ["--record", str(record), "--mode", mode, "--think", str(THINK_S)]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"connect probe failed: {out.stderr.strip()[-1500:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        cli_alone = attach_floor(env, result["session_id"]) if floor else None
    return result, cli_alone


@contextlib.contextmanager
def _as_user(env: dict[str, str]) -> Iterator[None]:
    """This process's HOME and XDG folders as the tray's (for its settings and ~/.ssh)."""
    names = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: env[name] for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _bundle_run(ctx: Context, n: int) -> float:
    """The packaged tray started as a desktop starts it; `clearml-tray connect <id>` → ssh."""
    from benchmarks.connect_probe import ssh_answers
    from tray_app.core.settings.settings import Settings, save_settings
    from tray_app.core.tunnels.ssh_config import SshConfig

    home, _record, config = _probe_home(ctx, f"connect-bundle-{n}")
    with ChildEmulator(8, agent=True, config=config), keyring("unlocked", home) as keyring_env:
        env = {**_probe_env(config, home), **keyring_env, "PATH": SYSTEM_PATH}
        env.pop("PYTHONPATH", None)
        env.pop("PYTHON_KEYRING_BACKEND", None)  # the bundle finds GNOME Keyring itself
        with _as_user(env):  # the editor named in Settings; the Include agreed earlier
            save_settings(Settings(editor_command=str(home / "bin" / "code")), [])
            SshConfig().ensure_include()
        tray = subprocess.Popen(
            [str(BUNDLE), "--config-file", str(config)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            listed = _wait_listed(env)
            session_id = next(
                s["id"] for s in listed if s["status"] == "in_progress" and s.get("ssh_port")
            )
            alias = f"clearml-{session_id[:8]}"
            clicked = time.time()
            forwarded = subprocess.run(
                [str(BUNDLE), "connect", session_id[:8]], env=env, capture_output=True,
                text=True, timeout=60,
            )  # fmt: skip
            if forwarded.returncode != 0:
                raise RuntimeError(f"connect: {forwarded.stderr.strip()}")
            with _as_user(env):
                return ssh_answers(alias, clicked + 120) - clicked
        finally:
            tray.send_signal(signal.SIGTERM)
            try:
                tray.wait(30)
            except subprocess.TimeoutExpired:
                tray.kill()


def _wait_listed(env: dict[str, str]) -> list[dict[str, Any]]:
    """The running bundle's own `list --json` (answered by it once its first refresh is in)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = subprocess.run(
            [str(BUNDLE), "list", "--json"], env=env, capture_output=True, text=True, timeout=60
        )
        if done.returncode == 0:
            sessions = json.loads(done.stdout)["sessions"]
            if any(s["status"] == "in_progress" and s.get("ssh_port") for s in sessions):
                return list(sessions)
        time.sleep(0.2)
    raise TimeoutError("the bundled tray listed no running session")


def run(ctx: Context) -> list[Figure]:
    runs = 1 if ctx.quick else 3
    variants = [
        ("cold", "unlocked"),
        ("intent", "unlocked"),
        ("warm", "unlocked"),
        ("cold", "locked"),
        ("cold", "none"),
    ]
    ssh: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
    editor: dict[tuple[str, str], list[float]] = {v: [] for v in variants}
    floors: list[float] = []
    rss: list[float] = []
    for n in range(runs):
        for mode, kind in variants:
            floor = mode == "cold" and kind == "unlocked"
            result, alone = _probe(ctx, f"connect-{mode}-{kind}-{n}", mode, kind, floor)
            ssh[(mode, kind)].append(result["connect_to_ssh_s"])
            editor[(mode, kind)].append(result["connect_to_editor_s"])
            if alone is not None:
                floors.append(alone)
            if "warm_tunnel_rss_mb" in result:
                rss.append(result["warm_tunnel_rss_mb"])
            ctx.say(
                f"connect ({mode}, keyring {kind}) → ssh answers {result['connect_to_ssh_s']:.2f} s"
                f", editor {result['connect_to_editor_s']:.2f} s"
                + (f"; clearml-session --attach alone {alone:.2f} s" if alone else "")
            )
    figures: list[Figure] = []
    words = {
        "cold": "nothing before the click",
        "intent": f"submenu opened {THINK_S:g} s before the click",
        "warm": "warm tunnels on",
    }
    keyrings = {
        "unlocked": "unlocked GNOME Keyring",
        "locked": "login keyring locked",
        "none": "no Secret Service",
    }
    for mode, kind in variants:
        value = median(ssh[(mode, kind)])
        figures.append(
            Figure(
                SECTION,
                f"Connect → `ssh -o BatchMode=yes` answers: {words[mode]}, {keyrings[kind]}"
                f" (median of {runs})",
                value,
                "s",
                f"<= {TARGET_S:g}",
                at_most(value, TARGET_S),
                f"editor started at {median(editor[(mode, kind)]):.2f} s",
            )
        )
    if packaged_bundle(ctx) is not None:
        bundled = []
        for n in range(runs):
            bundled.append(_bundle_run(ctx, n))
            ctx.say(f"connect (packaged bundle) → ssh answers {bundled[-1]:.2f} s")
        figures.append(
            Figure(
                SECTION,
                f"Connect → `ssh -o BatchMode=yes` answers: packaged bundle, cold (median of "
                f"{runs})",
                median(bundled),
                "s",
                f"<= {BUNDLE_TARGET_S:g}",
                at_most(median(bundled), BUNDLE_TARGET_S),
                "build/pyinstaller/dist (the .deb's content), system PATH only, its bundled "
                "clearml-session and askpass entry; `clearml-tray connect <id>` to the running "
                "one",
            )
        )
    figures += [
        Figure(
            SECTION,
            "memory of one warm tunnel (clearml-session + its ssh, resident)",
            median(rss),
            "MB",
        ),
        Figure(
            SECTION,
            f"clearml-session --attach alone → its ready line (the floor), median of {runs}",
            median(floors),
            "s",
            note="the real CLI on the same session: ~5 s of it is its wait after typing the "
            "password (a second prompt would mean a wrong one); no ssh login for an editor yet",
        ),
    ]
    return figures
