"""What a `clearml-session` child's parsed output means for its tunnel: a pure reducer.

`react(tunnel, event, policy)` → `(new tunnel, effects)`. The registry (`registry.py`) only
carries the effects out: write to the child's stdin, notify, ask the user, prepare the SSH host,
open the editor, hand the password over, terminate. Nothing here does I/O, so every transcript in
`tests/fixtures/transcripts/` is table-tested through it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tray_app.core.tunnels.model import LaunchPolicy, TunnelModel, TunnelState
from tray_app.core.tunnels.parser import (
    Error,
    MachineAllocated,
    MachineReady,
    Prompt,
    Ready,
    Reconnecting,
    SessionEvent,
    SetupProgress,
    ShuttingDown,
    StatusChanged,
    TaskAttached,
    TaskCreated,
    TunnelRetry,
    TunnelStarting,
)
from tray_app.core.wording import session_title, short_id

# Answers to the CLI's known prompts when creating a new session (run without --yes, because
# with --yes it attaches to the newest running session instead of creating one).
NEW_SESSION_ANSWERS: Mapping[str, str] = {
    "connect_active": "n",
    "select_session": "N",
    "launch": "y",
}

ERROR_TITLES: Mapping[str, str] = {
    "auth_failed": "ClearML rejected the credentials",
    "attach_failed": "Cannot connect to the session",
    "no_such_queue": "No such queue",
    "setup_failed": "Remote setup failed",
    "missing_config": "ClearML is not configured",
    "incorrect_password": "Incorrect session password",
    "traceback": "clearml-session crashed",
}


# --- effects ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriteStdin:
    text: str


@dataclass(frozen=True, slots=True)
class AskUser:
    question: str


@dataclass(frozen=True, slots=True)
class Notice:
    kind: str
    title: str
    body: str
    buttons: tuple[tuple[str, str], ...] = ()  # (label, action): open_editor, copy_ssh, ...
    critical: bool = False
    last_lines: bool = False  # append the child's last output lines to the body


@dataclass(frozen=True, slots=True)
class TunnelUp:
    """The tunnel (re)connected: prepare the SSH host and its login (every time)."""

    password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class OpenEditor:
    pass


@dataclass(frozen=True, slots=True)
class LoginAhead:
    """The first tunnel is starting: hand the CLI's ssh, which waits for it, the session
    password for this login (see password_ahead)."""

    user: str = ""
    host: str = ""
    port: int = 0


@dataclass(frozen=True, slots=True)
class Terminate:
    pass


Effect = WriteStdin | AskUser | Notice | TunnelUp | OpenEditor | Terminate | LoginAhead


def _with(tunnel: TunnelModel, **info: object) -> TunnelModel:
    return tunnel.with_info(**info)


def react(
    tunnel: TunnelModel, event: SessionEvent, policy: LaunchPolicy
) -> tuple[TunnelModel, list[Effect]]:
    """The tunnel after `event`, and what to do about it."""
    tunnel, effects = _react(tunnel, event, policy)
    return tunnel, quieten(effects) if policy.quiet else effects


def _react(
    tunnel: TunnelModel, event: SessionEvent, policy: LaunchPolicy
) -> tuple[TunnelModel, list[Effect]]:
    effects: list[Effect] = []
    if isinstance(event, TaskCreated | TaskAttached) and event.task_id:
        if tunnel.info.session_id is None:
            # From now on notices name the session as the menu does, with its short id: a
            # preset launched twice, or the CLI's default name, is otherwise ambiguous.
            label = tunnel.info.label
            if short_id(event.task_id) not in label:
                label = session_title(label, event.task_id)
            tunnel = _with(tunnel, session_id=event.task_id, label=label)
        return tunnel, effects
    if isinstance(event, Prompt):
        return tunnel, _answer(tunnel, event, policy)
    if isinstance(event, StatusChanged):
        return _with(tunnel, last_message=f"Status: {event.status}".strip()), effects
    if isinstance(event, SetupProgress):
        return _with(tunnel, last_message=event.text or event.line), effects
    if isinstance(event, Ready):
        return _ready(tunnel, event, policy)
    if isinstance(event, Error):
        return _error(tunnel, event)
    if isinstance(event, MachineAllocated):
        return _with(tunnel, last_message="Remote machine allocated"), effects
    if isinstance(event, MachineReady):
        return _with(tunnel, state=TunnelState.CONNECTING, last_message="Remote machine ready"), []
    if isinstance(event, TunnelStarting):
        message = "Reconnecting the SSH tunnel" if tunnel.ready_count else "Starting SSH tunnel"
        if not tunnel.ready_count and not tunnel.login_asked and event.host and event.port:
            effects.append(LoginAhead(event.user or "root", event.host, event.port))
            tunnel = replace(tunnel, login_asked=True)
        return _with(tunnel, state=TunnelState.CONNECTING, last_message=message), effects
    if isinstance(event, TunnelRetry):
        return _retry(tunnel, policy)
    if isinstance(event, Reconnecting):
        return _with(tunnel, state=TunnelState.CONNECTING, last_message="Reconnecting"), effects
    if isinstance(event, ShuttingDown):
        return _with(tunnel, last_message="Remote session shut down"), effects
    return tunnel, effects


def _answer(tunnel: TunnelModel, event: Prompt, policy: LaunchPolicy) -> list[Effect]:
    reply: str | None = None
    if policy.creating:
        if event.prompt == "restore_workspace":
            reply = "y" if policy.restore_workspace else "n"
        elif event.prompt == "use_previous_queue":
            # `--queue X` is stored as the "previous" queue before this question: confirm only
            # that one; anything else is the user's call.
            quoted = re.search(r"'(.*)'", event.question)
            if quoted and quoted.group(1) == policy.queue:
                reply = "y"
        else:
            reply = NEW_SESSION_ANSWERS.get(event.prompt)
    if reply is not None:
        return [WriteStdin(reply + "\n")]
    return [AskUser(event.question)]


def _ready(
    tunnel: TunnelModel, event: Ready, policy: LaunchPolicy
) -> tuple[TunnelModel, list[Effect]]:
    sid = tunnel.info.session_id
    first = tunnel.ready_count == 0
    tunnel = replace(tunnel, retries=0, ready_count=tunnel.ready_count + 1)
    tunnel = _with(
        tunnel,
        state=TunnelState.READY,
        user=event.user or None,
        local_ssh_port=event.port or None,
        jupyter_url=event.jupyter_url or None,
        vscode_url=event.vscode_url or None,
        ssh_host_alias=f"clearml-{sid[:8]}" if sid else None,
        generation=tunnel.ready_count,
        last_message="Connected" if first else "Reconnected",
    )
    effects: list[Effect] = [TunnelUp(event.password)]
    if not first:
        # A reconnect re-prints the banner: the login is redone, no second window, no notice.
        return tunnel, effects
    effects.append(ready_notice(tunnel))
    if policy.open_editor_when_ready:
        effects.append(OpenEditor())
    return tunnel, effects


def _retry(tunnel: TunnelModel, policy: LaunchPolicy) -> tuple[TunnelModel, list[Effect]]:
    tunnel = replace(tunnel, retries=tunnel.retries + 1)
    limit = max(1, policy.retry_limit)
    tunnel = _with(
        tunnel,
        state=TunnelState.RETRYING,
        last_message=f"SSH tunnel failed ({tunnel.retries}×), retrying",
    )
    if tunnel.retries < limit or tunnel.stopping:
        return tunnel, []
    if tunnel.ready_count:
        # It worked before (a server restart, a suspend, a network change): the CLI keeps
        # retrying on its own, so it is kept. The tunnel watch (watch.py) tells the user about
        # an outage that lasts, once, and about its end: no word from here.
        return tunnel, []
    tunnel = replace(tunnel, stopping=True, failed_reported=True)
    tunnel = _with(
        tunnel,
        state=TunnelState.FAILED,
        last_message=f"SSH tunnel failed {limit} times in a row; stopped",
    )
    return tunnel, [
        Notice(
            "tunnel_problems",
            "SSH tunnel keeps failing",
            f"{tunnel.info.label}: stopped after {limit} attempts (the remote session keeps "
            "running).",
            (("Show log", "show_log"),),
            critical=True,
            last_lines=True,
        ),
        Terminate(),
    ]


def _error(tunnel: TunnelModel, event: Error) -> tuple[TunnelModel, list[Effect]]:
    message = event.message or event.line or "error"
    if event.error == "ssh_client_failed":
        # The CLI retries the tunnel by itself; the retry policy decides when to give up.
        return _with(tunnel, last_message=message), []
    tunnel = replace(tunnel, failed_reported=True)
    tunnel = _with(tunnel, state=TunnelState.FAILED, last_message=message)
    title = ERROR_TITLES.get(event.error, "Session failed")
    body = f"{tunnel.info.label}: {message}" + (f"\n{event.reason}" if event.reason else "")
    return tunnel, [
        Notice("session_failed", title, body, (("Show log", "show_log"),), critical=True)
    ]


def finished(
    tunnel: TunnelModel, code: int, policy: LaunchPolicy | None = None
) -> tuple[TunnelModel, list[Effect]]:
    """The child exited with `code` (-1: crashed or killed)."""
    tunnel, effects = _finished(tunnel, code)
    return tunnel, quieten(effects) if policy is not None and policy.quiet else effects


def _finished(tunnel: TunnelModel, code: int) -> tuple[TunnelModel, list[Effect]]:
    if tunnel.info.state is TunnelState.FAILED or tunnel.failed_reported:
        return _with(tunnel, state=TunnelState.FAILED), []
    if code == 0 or tunnel.stopping:
        return _with(tunnel, state=TunnelState.CLOSED, last_message="Ended"), []
    tunnel = _with(
        tunnel, state=TunnelState.FAILED, last_message=f"clearml-session exited ({code})"
    )
    return tunnel, [
        Notice(
            "session_failed",
            "clearml-session stopped",
            f"{tunnel.info.label}: exited with code {code}.",
            (("Show log", "show_log"),),
            critical=True,
            last_lines=True,
        )
    ]


def quieten(effects: Sequence[Effect]) -> list[Effect]:
    """The effects of a prewarmed attach: nobody is waiting for it, so it posts no notice and
    opens no editor; a question it cannot answer alone ends it instead of asking the user (a
    Connect later starts an attach that can ask). The password is still learnt (TunnelUp)."""
    quiet: list[Effect] = []
    for effect in effects:
        if isinstance(effect, Notice | OpenEditor):
            continue
        quiet.append(Terminate() if isinstance(effect, AskUser) else effect)
    return quiet


def ready_notice(tunnel: TunnelModel) -> Notice:
    """ "Session ready", with what can be done with the tunnel now."""
    buttons: list[tuple[str, str]] = [
        ("Open in VS Code", "open_editor"),
        ("Copy SSH command", "copy_ssh"),
    ]
    if tunnel.info.jupyter_url:
        buttons.append(("Open JupyterLab", "open_jupyter"))
    # No command in the text: the Host block it would need may still wait for the user's
    # answer to the Include question; "Copy SSH command" prepares it first.
    return Notice(
        "session_ready", "Session ready", f"{tunnel.info.label} is connected.", tuple(buttons)
    )


def progress_notice(tunnel: TunnelModel, creating: bool) -> Notice:
    """Word at once (the CLI is silent for 7–10 s), with its log to follow and a way out; the
    ready or failed notice replaces it."""
    label = tunnel.info.label
    if creating:
        title, body = "Starting a session", f"{label}: asking ClearML for a machine."
    else:
        title, body = "Connecting to the session", f"{label}: opening the SSH tunnel."
    return Notice("progress", title, body, (("Follow log", "show_log"), ("Cancel", "cancel")))


def replay(
    tunnel: TunnelModel, events: Sequence[SessionEvent], policy: LaunchPolicy
) -> tuple[TunnelModel, list[Effect]]:
    """Fold `react` over events (tests, and a benchmark of the whole path)."""
    effects: list[Effect] = []
    for event in events:
        tunnel, more = react(tunnel, event, policy)
        effects += more
    return tunnel, effects
