"""How long the SSH_ASKPASS helper takes to answer ssh: a new process asking the running tray.

ssh starts the helper as a new process for every login that needs the session password (the
CLI's first ssh, the editor's master login), and that login waits for it: the interpreter's
start, the helper's few imports and one round trip over the tray's instance socket. This
section serves the socket as the tray does (its `InstanceRequests` and `SessionPasswords`, one
JSON line each way) and times the helper as ssh runs it:

- from this checkout's venv (`python -m tray_app.askpass`, what a pip install runs);
- from the packaged bundle, when one was built (`build/pyinstaller/dist`, the `.deb`'s
  content): the bundled executable's `_askpass` entry.

The tray's checks of the asking ssh (its command line) are answered for any process here: the
helper's parent is this benchmark, not an ssh.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.answering_tray import answering_tray
from benchmarks.common import REPO, Context, Figure, at_most, median, packaged_bundle
from tray_app.core.tunnels.session_passwords import SessionPasswords

SECTION = "askpass"
TARGET_MS = 250.0
PASSWORD = "bench-session-pw-0123"
PROMPT = "root@127.0.0.1's password: "


def _time_helper(command: list[str], path: str, grants: SessionPasswords, runs: int) -> list[float]:
    from tray_app.core.tunnels.askpass_words import ASKPASS_SOCKET_ENV, ASKPASS_TOKEN_ENV

    times = []
    for _ in range(runs):
        token = grants.new(
            PASSWORD, user="root", host="clearml-01234567", port=8022, prompt_host="127.0.0.1"
        )
        env = {**os.environ, ASKPASS_TOKEN_ENV: token, ASKPASS_SOCKET_ENV: path}
        env["PYTHONPATH"] = str(REPO)
        start = time.perf_counter()
        out = subprocess.run(
            [*command, PROMPT], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        times.append((time.perf_counter() - start) * 1000)
        if out.stdout != PASSWORD + "\n":
            raise RuntimeError(f"the helper answered {out.stdout!r} ({out.stderr.strip()})")
    return times


def run(ctx: Context) -> list[Figure]:
    runs = 3 if ctx.quick else 20
    figures: list[Figure] = []
    note = "a new process per answer: the interpreter's start, the helper's imports, one round"
    note += " trip over the tray's instance socket (the password is in the tray's memory)"
    ssh = ["ssh", "-p", "8022", "-N", "-f", "clearml-01234567"]  # the ssh the helper serves
    with answering_tray(SessionPasswords(argv_of=lambda pid: ssh), ctx.workdir) as tray:
        path, grants = tray.socket, tray.passwords
        _time_helper([sys.executable, "-m", "tray_app.askpass"], path, grants, 1)  # .pyc
        venv = _time_helper([sys.executable, "-m", "tray_app.askpass"], path, grants, runs)
        figures += [
            Figure(
                SECTION,
                f"askpass answer, from the venv (median of {runs})",
                median(venv),
                "ms",
                f"<= {TARGET_MS:.0f}",
                at_most(median(venv), TARGET_MS),
                note,
            ),
            Figure(SECTION, f"askpass answer, from the venv (worst of {runs})", max(venv), "ms"),
        ]
        ctx.say(f"askpass: {median(venv):.0f} ms (venv)")
        bundle = packaged_bundle(ctx)
        if bundle is not None:
            bundled = _time_helper([str(bundle), "_askpass"], path, grants, runs)
            figures.append(
                Figure(
                    SECTION,
                    f"askpass answer, from the packaged bundle (median of {runs})",
                    median(bundled),
                    "ms",
                    f"<= {TARGET_MS:.0f}",
                    at_most(median(bundled), TARGET_MS),
                    "the bundled executable's `_askpass` entry (PyInstaller's start included)",
                )
            )
            ctx.say(f"askpass: {median(bundled):.0f} ms (bundle)")
    return figures
