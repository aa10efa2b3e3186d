"""New session from a preset: the fixed password from the keyring, then the launcher, then word."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tray_app.core.ports import Ask, Notify, Question, confirm
from tray_app.core.settings.presets import PasswordPolicy, Preset, preset_disclosures
from tray_app.core.settings.secrets import SecretStore
from tray_app.core.tunnels.reducer import LaunchProblem

log = logging.getLogger(__name__)

Create = Callable[[Preset, str | None], str]


class LaunchFlow:
    def __init__(
        self,
        create: Create,
        *,
        notify: Notify,
        started: Callable[[], None],
        ask: Ask | None = None,
        foreign: Callable[[Preset], bool] = lambda preset: False,
        secrets: Callable[[], SecretStore] = SecretStore,
        remember_queue: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._ask = ask
        self._foreign = foreign  # a preset this user did not write (a repository's)
        self._approved: set[str] = set()  # foreign presets launched once this run, as shown
        self._create = create  # the launcher: starts clearml-session, or raises LaunchProblem
        self._notify = notify
        self._started = started  # e.g. check the editor while the session comes up
        self._secrets = secrets
        self._remember_queue = remember_queue  # the next New session dialog starts on it

    async def launch(self, preset: Preset) -> str | None:
        """The launch key, or None when it could not start (the user was told why)."""
        if not await self._disclosed(preset):
            return None
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
        if self._remember_queue is not None:
            await self._remember_queue(preset.queue)
        # The launcher posts "Starting a session" (with Follow log and Cancel) itself: every
        # launch and attach says so, whichever way it was started.
        log.info("launching a session from preset %r (%s)", preset.name, key)
        return key

    async def _disclosed(self, preset: Preset) -> bool:
        """A repository's preset shows what it would send or trust before its first launch."""
        if not self._foreign(preset):
            return True
        notes = preset_disclosures(preset)
        if not notes or repr(preset) in self._approved:
            return True
        if self._ask is None:
            return False
        question = Question(
            "Launch a workspace preset?",
            f"The preset “{preset.name}” comes from the workspace folder, not from you. "
            "Launching it:\n• " + "\n• ".join(notes),
            ("Launch", "Cancel"),
        )
        if not await confirm(self._ask, question):
            log.info("workspace preset %r not launched: declined", preset.name)
            return False
        self._approved.add(repr(preset))
        return True
