"""One `clearml-session` child from argv to editor, Qt-free.

    launch.py          prepare(preset) → Prepared (argv, before any process); LaunchFlow
    environment.py     where a child runs: program, env (config file, ssh shim), state, log
    registry.py        the live children: create / attach / promote / retire, effects
    output.py          a child's output: decode → parse → redact → log → last lines → prompts
    parser.py          clearml-session's lines → typed events (pure)
    reducer.py         event → (tunnel, effects) (pure)
    model.py           TunnelInfo, TunnelState, TunnelModel, LaunchPolicy
    ports.py           ChildProcess (a QProcess on the Qt side), TunnelEvents (the views)
    connect.py         Connect in VS Code: ready → editor, prewarmed → taken over, none → attach
    cancel.py          Cancel on a launch or connect coming up: the task deleted or stopped
    hosts.py           the Host block and the login ahead of the editor
    open_editor.py     the editor (Remote-SSH checked) or a terminal on the Host
    password_ahead.py  the session password handed to the CLI's ssh (it skips its 5 s wait)
    session_passwords.py  session passwords in memory; the one askpass answer each may give
    prewarm.py         tunnels opened when the user points at a session (or kept warm)
    watch.py           ready tunnels probed; lost ones reconnected
    ssh_config.py      our ssh config file, Include'd from ~/.ssh/config
    ssh_master.py      argv and scripts for the master login, the askpass helper, the shim
    editors.py         which editor, and its argv (pure)
    children.py        nothing outlives the tray: process trees, pid file, parent-death signal
    errors.py          the wing's errors

The names below are what `qt/` and `app.py` use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tray_app.core.tunnels.cancel import CancelFlow
    from tray_app.core.tunnels.connect import ConnectFlow
    from tray_app.core.tunnels.environment import ChildEnvironment
    from tray_app.core.tunnels.hosts import SessionHosts
    from tray_app.core.tunnels.launch import Launched, LaunchFlow
    from tray_app.core.tunnels.model import TunnelInfo, TunnelState
    from tray_app.core.tunnels.open_editor import EditorOpener
    from tray_app.core.tunnels.password_ahead import PasswordAhead
    from tray_app.core.tunnels.ports import (
        TERMINATE_GRACE_MS,
        ChildListener,
        ChildProcess,
        ChildSpec,
        NoEvents,
        TunnelEvents,
    )
    from tray_app.core.tunnels.prewarm import PrewarmFlow
    from tray_app.core.tunnels.registry import TunnelRegistry
    from tray_app.core.tunnels.session_passwords import SessionPasswords
    from tray_app.core.tunnels.watch import TunnelWatch

# Loaded when first asked for: the askpass helper, which ssh starts for every login, imports
# two small modules of this package and must not pay for the whole wing (keyring, the SDK's
# parser tables...).
_WHERE = {
    "CancelFlow": "cancel",
    "ConnectFlow": "connect",
    "ChildEnvironment": "environment",
    "SessionHosts": "hosts",
    "Launched": "launch",
    "LaunchFlow": "launch",
    "TunnelInfo": "model",
    "TunnelState": "model",
    "EditorOpener": "open_editor",
    "PasswordAhead": "password_ahead",
    "TERMINATE_GRACE_MS": "ports",
    "ChildListener": "ports",
    "ChildProcess": "ports",
    "ChildSpec": "ports",
    "NoEvents": "ports",
    "TunnelEvents": "ports",
    "PrewarmFlow": "prewarm",
    "TunnelRegistry": "registry",
    "SessionPasswords": "session_passwords",
    "TunnelWatch": "watch",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "TERMINATE_GRACE_MS",
    "CancelFlow",
    "ChildEnvironment",
    "ChildListener",
    "ChildProcess",
    "ChildSpec",
    "ConnectFlow",
    "EditorOpener",
    "LaunchFlow",
    "Launched",
    "NoEvents",
    "PasswordAhead",
    "PrewarmFlow",
    "SessionHosts",
    "SessionPasswords",
    "TunnelEvents",
    "TunnelInfo",
    "TunnelRegistry",
    "TunnelState",
    "TunnelWatch",
]
