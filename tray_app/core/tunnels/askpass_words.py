"""What the askpass helper, the ssh shim and the tray agree on: variable names and prompts.

Standard library `re` only: the helper runs for every login ssh makes, so what it imports is
on the login's path (tray_app/askpass.py imports this module and the socket client, nothing
else of the app).

Tested in tests/unit/tunnels/test_session_passwords.py and tests/e2e/test_jump_host_e2e.py.
"""

from __future__ import annotations

import re

ASKPASS_TOKEN_ENV = "CLEARML_TRAY_ASKPASS_TOKEN"  # the one password this ssh may be given
ASKPASS_SOCKET_ENV = "CLEARML_TRAY_ASKPASS_SOCKET"  # where the tray answers
LOGIN_MARKER_ENV = "CLEARML_TRAY_LOGIN_MARKER"  # the CLI's ssh waits while this file exists
# What the askpass helper's entry does instead when the shim runs it for an ssh with a proxy.
PROXIED_SSH_ARG = "--ssh-with-proxy"

# OpenSSH's two password prompts: `user@host's password: ` (password authentication) and
# `(user@host) Password: ` (keyboard-interactive, as OpenSSH 8.4+ prefixes the server's).
_PASSWORD = r"{who}'s password:"
_KEYBOARD_INTERACTIVE = r"\({who}\) Password:"


def looks_like_password_prompt(prompt: str) -> bool:
    """One of the two forms at all (the helper's own first look, before it asks the tray)."""
    who = r"[^\s@()]+@[^\s()']+"
    text = prompt.strip()
    return any(
        re.fullmatch(form.format(who=who), text) for form in (_PASSWORD, _KEYBOARD_INTERACTIVE)
    )


def password_prompt(prompt: str, user: str, host: str) -> bool:
    """Whether `prompt` is ssh's password prompt for `user` at `host`, and nothing else."""
    text = prompt.strip()
    if not (user and host and text):
        return False
    # ssh prints at most 30 characters of the user and 128 of the host in the first form.
    short = re.escape(f"{user[:30]}@{host[:128]}")
    return bool(
        re.fullmatch(_PASSWORD.format(who=short), text)
        or re.fullmatch(_KEYBOARD_INTERACTIVE.format(who=re.escape(f"{user}@{host}")), text)
    )
