"""Connect in VS Code: from the click to the editor, whatever state the session's tunnel is in.

`ConnectFlow` decides: a ready tunnel opens the editor now; a prewarmed one (opened when the
user pointed at the session) is taken over; one still coming up says so; none starts an attach,
and the editor opens once the tunnel is ready (the registry carries that out). The Host block,
the login and the editor itself are `SessionHosts`' and `EditorOpener`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from tray_app.core.ports import Notify, Spawn
from tray_app.core.server.models import Snapshot
from tray_app.core.server.session_ref import resolve
from tray_app.core.tunnels.hosts import SessionHosts
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.tunnels.open_editor import EditorOpener
from tray_app.core.tunnels.password_ahead import PasswordAhead
from tray_app.core.wording import session_title, short_id

log = logging.getLogger(__name__)


class Tunnels(Protocol):
    """The registry, as this flow sees it."""

    def tunnels(self) -> Mapping[str, TunnelInfo]: ...

    def tunnel_for(self, session_id: str) -> TunnelInfo | None: ...

    def attach(self, session_id: str, label: str = "", *, prewarm: bool = False) -> None: ...

    def promote(self, key: str) -> TunnelInfo | None: ...

    def show_progress(self, key: str) -> None: ...


class ConnectFlow:
    def __init__(
        self,
        tunnels: Tunnels,
        *,
        hosts: SessionHosts,
        editor: EditorOpener,
        notify: Notify,
        spawn: Spawn,
        ahead: PasswordAhead | None = None,
    ) -> None:
        self._tunnels = tunnels
        self._hosts = hosts
        self._editor = editor
        self._notify = notify
        self._spawn = spawn
        self._ahead = ahead

    def tunnel_for(self, session_id: str) -> TunnelInfo | None:
        return self._tunnels.tunnel_for(session_id)

    def connect(self, session_id: str, label: str = "") -> None:
        """Open the editor on the session: now if its tunnel is up, else once it is."""
        self._spawn(self.connect_now(session_id, label))

    async def connect_now(self, session_id: str, label: str = "") -> None:
        """`connect`'s work. The Include line it needs is asked about first, naming the
        session (once ever: afterwards this costs one look at ~/.ssh/config); after a Cancel
        nothing starts, and the notice's Connect button asks again."""
        title = label if short_id(session_id) in label else session_title(label, session_id)
        agreed = await self._hosts.include_up_front(
            f"Connect in VS Code to “{title}”", again=lambda: self.connect(session_id, label)
        )
        if not agreed:
            return
        tunnel = self._tunnels.tunnel_for(session_id)
        if tunnel is not None and tunnel.prewarmed and tunnel.live:
            # Opened when the user pointed at the session: most of the wait is already behind.
            tunnel = self._tunnels.promote(tunnel.key) or tunnel
            if tunnel.state != TunnelState.READY:
                self._editor.check_soon()  # it opens the editor itself once ready
                return
        if tunnel is not None and tunnel.state == TunnelState.READY:
            self._editor.open(tunnel)
        elif tunnel is not None and tunnel.live:
            self._tunnels.show_progress(tunnel.key)
        else:
            self._tunnels.attach(session_id, label)

    def connect_ref(self, snapshot: Snapshot, ref: str) -> tuple[bool, str]:
        """Connect to a session named by its id or a unique start of it (`list`'s short id);
        (accepted, what to tell whoever asked)."""
        found = resolve(snapshot, ref)
        if found.session_id is None:
            return False, found.error
        self.connect(found.session_id, found.label)
        return True, f"Connecting to {session_title(found.label, found.session_id)}."

    def copy_ssh(self, session_id: str) -> bool:
        """`ssh clearml-<id8>` over the session's ready tunnel; False when it has none."""
        tunnel = self._tunnels.tunnel_for(session_id)
        if tunnel is None or tunnel.state != TunnelState.READY:
            return False
        self._hosts.copy_ssh(tunnel)
        return True

    async def open_terminal(self, session_id: str) -> None:
        """The user's terminal running `ssh <alias>` over the session's tunnel."""
        tunnel = self._tunnels.tunnel_for(session_id)
        if tunnel is None or tunnel.state != TunnelState.READY:
            self._notify.notify("info", "Terminal", "Connect the session first.")
            return
        await self._editor.open_terminal(tunnel)

    async def close(self) -> None:
        """Quit: no master, no Host block, and no password left to hand over."""
        await self._hosts.close()
        if self._ahead is not None:
            self._ahead.forget()
