"""SSH_ASKPASS helper: asks the running tray for the one session password this ssh may have.

ssh runs it with its prompt as the argument when it needs a password: for the editor's master
connection, and for clearml-session's first ssh (the shim in core.tunnels.ssh_master). The
token in CLEARML_TRAY_ASKPASS_TOKEN names the password; the tray holds it in memory only and
answers over its user-only socket after checking the prompt and the ssh that asks
(core.tunnels.session_passwords). It prints the password and nothing else; anything else — a
key's passphrase, a host key question, an empty prompt, a proxy's ssh, a tray that is gone — is
refused with one line on stderr (ssh shows it), and ssh goes on without it.

In a PyInstaller bundle it is the hidden `_askpass` entry of the tray's own executable. The
same entry, with `--ssh-with-proxy`, runs an ssh whose ProxyJump / ProxyCommand must not
inherit the askpass variables (the shim hands such an ssh over to it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from tray_app.core.tunnels.askpass_words import PROXIED_SSH_ARG

    if args[:1] == [PROXIED_SSH_ARG]:
        return run_proxied(args[1:])
    return answer(" ".join(args))


def answer(prompt: str) -> int:
    from tray_app.core.instance_socket import ask_running
    from tray_app.core.tunnels.askpass_words import (
        ASKPASS_SOCKET_ENV,
        ASKPASS_TOKEN_ENV,
        looks_like_password_prompt,
    )

    token = os.environ.get(ASKPASS_TOKEN_ENV, "")
    if not token:
        return _refuse("no session password was handed to this ssh")
    if not looks_like_password_prompt(prompt):
        # Decided here, without a round trip: a passphrase, a host key question, an empty one.
        return _refuse(f"not a password prompt: {prompt.strip()[:200]!r}")
    request = {"cmd": "askpass", "token": token, "prompt": prompt, "pid": os.getppid()}
    reply = ask_running(request, timeout_s=5.0, path=os.environ.get(ASKPASS_SOCKET_ENV) or None)
    if reply is None:
        return _refuse("ClearML Session Tray did not answer (is it still running?)")
    password = reply.get("password")
    if not reply.get("ok") or not isinstance(password, str) or not password:
        return _refuse(str(reply.get("message") or "no password for this prompt"))
    sys.stdout.write(password + "\n")
    sys.stdout.flush()
    return 0


def _refuse(why: str) -> int:
    print(f"clearml-tray askpass: {why}", file=sys.stderr)
    return 1


def run_proxied(args: Sequence[str]) -> int:
    """`use helper ssh args…`: exec ssh with its proxy rewritten to run without the askpass
    variables, and (use = 1) with our helper for its own login."""
    import shutil
    import subprocess

    from tray_app.core.tunnels.ssh_master import (
        ASKPASS_VARIABLES,
        logged_in_options,
        proxy_command,
        resolved_options,
    )

    if len(args) < 3:
        return _refuse(f"{len(args)} arguments are not `use helper ssh args…`")
    use, helper, ssh, *ssh_args = args
    env = dict(os.environ)
    resolved = subprocess.run(
        [ssh, "-G", *ssh_args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    options = resolved_options(resolved.stdout)
    config = _config_file(ssh_args)
    setsid = shutil.which("setsid") if sys.platform.startswith("linux") else None
    command = proxy_command(options, ssh=ssh, config_file=config, setsid=setsid)
    extra = ["-o", f"ProxyCommand={command}"] if command else []
    if use == "1":
        env.update(SSH_ASKPASS=helper, SSH_ASKPASS_REQUIRE="force")
        env.setdefault("DISPLAY", ":0")
        extra += logged_in_options()
    else:
        for name in ASKPASS_VARIABLES:
            env.pop(name, None)
    sys.stdout.flush()
    os.execve(ssh, [ssh, *extra, *ssh_args], env)
    return 127  # not reached


def _config_file(ssh_args: Sequence[str]) -> str:
    for k, arg in enumerate(ssh_args):
        if arg == "-F" and k + 1 < len(ssh_args):
            return ssh_args[k + 1]
        if arg.startswith("-F") and len(arg) > 2:
            return arg[2:]
    return ""


if __name__ == "__main__":
    sys.exit(main())
