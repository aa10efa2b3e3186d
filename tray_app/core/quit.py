"""Quit: with tunnels open, ask whether their remote sessions keep running."""

from __future__ import annotations

from collections.abc import Iterable

from tray_app.core.ports import Ask, Question
from tray_app.core.tunnels.model import TunnelInfo, TunnelState

_ENDED = (TunnelState.CLOSED, TunnelState.FAILED)


def quit_question(open_tunnels: int) -> Question:
    """What Quit asks with `open_tunnels` (≥ 1) open; answers: keep (0), shut down (1), cancel."""
    one = open_tunnels == 1
    text = (
        "A session tunnel is open: an editor connected through it loses the connection. The "
        "remote session can keep running (reconnect later from the menu) or be shut down now."
        if one
        else f"{open_tunnels} session tunnels are open: editors connected through them lose the "
        "connection. The remote sessions can keep running (reconnect later from the menu) or be "
        "shut down now."
    )
    buttons = (
        "Keep the session running" if one else "Keep sessions running",
        "Shut it down" if one else "Shut them down",
        "Cancel",
    )
    return Question("Quit ClearML Session Tray", text, buttons, destructive=1)


async def ask_quit(ask: Ask, tunnels: Iterable[TunnelInfo]) -> bool | None:
    """Whether to shut the remote sessions down on Quit (None: the user cancelled). Only the
    tunnels the user asked for count: a prewarmed one nobody uses just ends."""
    live = [t for t in tunnels if t.state not in _ENDED and not t.prewarmed]
    if not live:
        return False
    answer = await ask.ask(quit_question(len(live)))
    return None if answer not in (0, 1) else answer == 1
