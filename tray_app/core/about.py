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


KEYRING_WAIT_S = 5.0


async def describe(secrets: SecretStore, environment: ChildEnvironment, log_folder: str) -> str:
    """The About box's text, read off the event loop; a keyring that does not answer (locked,
    its unlock prompt open) is said to, and holds up nothing, Quit included."""
    from tray_app.core.tasks import in_daemon_thread

    try:
        where = await asyncio.wait_for(
            asyncio.shield(in_daemon_thread(secrets.describe, "keyring-describe")), KEYRING_WAIT_S
        )
    except TimeoutError:
        where = (
            "The system keyring did not answer within a few seconds (it may be locked and "
            "waiting for you to unlock it). Session passwords are kept in memory only."
        )
    command = await asyncio.to_thread(environment.command)
    cli = clearml_session_words(command, environment.problem)
    return about_text(log_folder=log_folder, secrets=where, clearml_session=cli)
