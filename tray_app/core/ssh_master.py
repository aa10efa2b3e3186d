"""A shared, already-authenticated SSH connection for the editor (OpenSSH ControlMaster).

clearml-session 0.17's remote sshd takes the session password and the CLI cannot install a key,
so the tray opens one master connection through the tunnel, answering the password prompt with
an SSH_ASKPASS helper that reads the password from the keyring (never from argv, env or a
file); the Host block shares its ControlPath, so VS Code's ssh reuses the connection and never
asks. Pure argv/env builders here; the app runs them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from tray_app.core.atomic import atomic_write_text

ASKPASS_KEY_ENV = "CLEARML_TRAY_ASKPASS_KEY"


def master_supported() -> bool:
    """OpenSSH multiplexing needs Unix sockets: not on Windows' OpenSSH."""
    return os.name == "posix"


def master_argv(alias: str, config_file: Path) -> list[str]:
    return [
        "ssh",
        "-F",
        str(config_file),
        "-o",
        "ControlMaster=yes",
        "-o",
        "ControlPersist=yes",
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        "-N",
        "-f",
        alias,
    ]


def check_argv(alias: str, config_file: Path) -> list[str]:
    return ["ssh", "-F", str(config_file), "-O", "check", alias]


def exit_argv(alias: str, config_file: Path) -> list[str]:
    return ["ssh", "-F", str(config_file), "-O", "exit", alias]


def askpass_env(base: Mapping[str, str], helper: Path, secret_name: str) -> dict[str, str]:
    """The master's environment: our askpass helper, forced even without a terminal."""
    env = dict(base)
    env.update(
        SSH_ASKPASS=str(helper),
        SSH_ASKPASS_REQUIRE="force",
        DISPLAY=base.get("DISPLAY", ":0"),  # older OpenSSH only uses askpass with a DISPLAY
        **{ASKPASS_KEY_ENV: secret_name},
    )
    return env


def askpass_launcher(directory: Path) -> Path:
    """An executable that runs `python -m tray_app.askpass` with this interpreter."""
    path = directory / "clearml-tray-askpass"
    atomic_write_text(path, f'#!/bin/sh\nexec "{sys.executable}" -m tray_app.askpass "$@"\n')
    path.chmod(0o700)
    return path
