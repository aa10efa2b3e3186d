"""New session from a preset: the fixed password from the keyring, then the launcher, then word."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tray_app.core.launch_events import LaunchProblem
from tray_app.core.ports import Notify
from tray_app.core.presets import PasswordPolicy, Preset
from tray_app.core.secrets import SecretStore

log = logging.getLogger(__name__)

Create = Callable[[Preset, str | None], str]


class LaunchFlow:
    def __init__(
        self,
        create: Create,
        *,
        notify: Notify,
        started: Callable[[], None],
        secrets: Callable[[], SecretStore] = SecretStore,
    ) -> None:
        self._create = create  # the launcher: starts clearml-session, or raises LaunchProblem
        self._notify = notify
        self._started = started  # e.g. check the editor while the session comes up
        self._secrets = secrets

    async def launch(self, preset: Preset) -> str | None:
        """The launch key, or None when it could not start (the user was told why)."""
        password = None
        if preset.password_policy is PasswordPolicy.FIXED:
            try:  # the keyring may be a D-Bus service: never on the event loop's thread
                password = await asyncio.to_thread(
                    self._secrets().get, preset.password_keyring_key()
                )
            except Exception as exc:  # a locked or absent keyring: the launcher says what
                log.warning("fixed password of %r not read: %s", preset.name, exc)
        try:
            key = self._create(preset, password)
        except LaunchProblem as exc:
            self._notify.notify("error", "Session not started", str(exc), critical=True)
            return None
        self._started()
        log.info("launching a session from preset %r (%s)", preset.name, key)
        self._notify.notify("info", "Starting a session", f"Preset “{preset.name}”: see the menu.")
        return key
