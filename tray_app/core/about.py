"""The About box's text: the version, where the logs are, where secrets really go, and which
clearml-session runs. Built off the event loop (the keyring may ask D-Bus); tested in
tests/unit/test_about.py.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tray_app import APP_DISPLAY_NAME, __version__

if TYPE_CHECKING:
    from tray_app.core.settings.secrets import SecretStore
    from tray_app.core.tunnels.environment import ChildEnvironment


def clearml_session_words(command: Sequence[str] | None, problem: str = "") -> str:
    """Which clearml-session a Connect runs, in words."""
    if not command:
        return problem or "clearml-session: none found."
    if len(command) == 2 and command[1] == "_clearml-session":
        return "clearml-session: the one bundled with this app."
    return f"clearml-session: {command[0]}"


def about_text(*, log_folder: str, secrets: str, clearml_session: str) -> str:
    """HTML for the About box (every value escaped)."""
    return (
        f"<b>{html.escape(APP_DISPLAY_NAME)}</b> {html.escape(__version__)}<br>"
        "Your ClearML interactive sessions in the system tray.<br><br>"
        f"Log folder: {html.escape(log_folder)}<br>"
        f"{html.escape(clearml_session)}<br><br>{html.escape(secrets)}"
    )


async def describe(secrets: SecretStore, environment: ChildEnvironment, log_folder: str) -> str:
    """The About box's text, read off the event loop."""
    where = await asyncio.to_thread(secrets.describe)
    command = await asyncio.to_thread(environment.command)
    cli = clearml_session_words(command, environment.problem)
    return about_text(log_folder=log_folder, secrets=where, clearml_session=cli)
