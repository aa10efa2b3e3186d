"""What the running tray answers another instance: `connect <id>`, a snapshot for `list`, the
clearml.conf it reads (so that `list` asks the same server, the demo's included), show, and the
askpass helper's request for a session password.

The socket itself is Qt's (qt/single_instance.py); what a request means is decided here. A
Connect that arrives before the first snapshot waits for it (`pending`), so `clearml-tray
connect <short id>` works right after the tray starts. An askpass request
`{"cmd": "askpass", "token", "prompt", "pid"}` is answered `{"ok": true, "password": …}` only
as core/tunnels/session_passwords.py allows (the socket is the user's own: mode 600).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tray_app.core.server.models import Snapshot
from tray_app.core.server.refresh import PollStatus

if TYPE_CHECKING:
    from tray_app.core.idle.policy import IdleVerdict

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    ok: bool
    message: str = ""
    # More keys of the reply line (a snapshot request's "output"); "ok"/"message" win.
    extra: Mapping[str, object] = field(default_factory=dict)


class InstanceRequests:
    def __init__(
        self,
        *,
        snapshot: Callable[[], Snapshot | None],
        status: Callable[[], PollStatus],
        connect: Callable[[Snapshot, str], tuple[bool, str]],
        show: Callable[[], None],
        idle: Callable[[], Mapping[str, IdleVerdict]] = dict,
        pending: str | None = None,
        config_file: Callable[[], str | None] = lambda: None,
        askpass: Callable[[str, str, int], tuple[str | None, str]] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._status = status
        self._idle = idle  # the idle verdicts the tray acts on, for `list`
        self._connect = connect  # ConnectFlow.connect_ref
        self._show = show
        self._config_file = config_file  # the clearml.conf the tray reads (the demo's, …)
        self.pending = pending  # a Connect asked for before the first snapshot
        self._askpass = askpass  # (token, prompt, pid) → (password, why not)

    def handle(self, message: dict[str, Any]) -> Reply:
        cmd = message.get("cmd")
        # A status bar asks for the snapshot every few seconds, ssh for each login's password:
        # not worth a log line each time.
        quiet = cmd in ("snapshot", "config", "askpass")
        (log.debug if quiet else log.info)("request from another instance: %s", cmd)
        if cmd == "askpass":
            return self.askpass(message)
        if cmd == "connect" and isinstance(message.get("session_id"), str):
            return self.connect(message["session_id"])
        if cmd == "config":  # `list` asking which server to ask itself (--no-tray, --all-users)
            return Reply(True, "", {"config_file": self._config_file()})
        if cmd == "snapshot":  # `clearml-tray list` asking for the latest snapshot
            from tray_app.core.view.shared_snapshot import snapshot_reply

            ok, why, output = snapshot_reply(
                self._snapshot(), self._status(), message, idle=self._idle()
            )
            return Reply(ok, why, {"output": output} if output is not None else {})
        self._show()
        return Reply(True)

    def askpass(self, message: dict[str, Any]) -> Reply:
        """The askpass helper asks for the password its token names (never logged)."""
        token, prompt, pid = message.get("token"), message.get("prompt"), message.get("pid")
        if self._askpass is None or not isinstance(token, str) or not isinstance(prompt, str):
            return Reply(False, "this tray holds no session password")
        password, why = self._askpass(token, prompt, pid if isinstance(pid, int) else 0)
        if password is None:
            return Reply(False, why)
        return Reply(True, "", {"password": password})

    def connect(self, ref: str) -> Reply:
        """`clearml-tray connect <id or short id>`, answered in words."""
        snapshot = self._snapshot()
        if snapshot is None:
            self.pending = ref
            return Reply(True, "The tray is still loading sessions; it connects once they are in.")
        return Reply(*self._connect(snapshot, ref))

    def snapshot_arrived(self) -> Reply | None:
        """The Connect that waited for the first snapshot, now answered (None: none waited)."""
        if self.pending is None or self._snapshot() is None:
            return None
        ref, self.pending = self.pending, None
        return self.connect(ref)
