"""New sessions and attaches, prepared before any process exists; the Launch workflow.

`prepare(preset, ...)` and `prepare_attach(session_id, ...)` return a `Prepared`: ok, a message
in words when not, the argv, and the state file's text (a fixed password goes there, never into
argv, which any local user can read in /proc). Nothing is started and nothing raised: the
registry starts what is ok, the caller shows the message (as Vorta's `BorgJob.prepare()`).

The CLI never writes its defaults (`--disable-store-defaults`): they would include the
session password, and each child's state file is the tray's (see environment.py).

`LaunchFlow` is New session from a preset: what a workspace preset sends is shown first, the
fixed password is read from the keyring off the event loop (in a thread the flow stops waiting
for after a few seconds: a locked keyring waits for its unlock prompt), then the registry starts
the CLI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tray_app.core.ports import Ask, Notify, Question, Spawn, confirm
from tray_app.core.server.errors import ClearMLError
from tray_app.core.server.sessions import SessionService
from tray_app.core.settings import presets as presets_mod
from tray_app.core.settings.errors import SecretStoreError
from tray_app.core.settings.presets import PasswordPolicy, Preset, preset_disclosures
from tray_app.core.settings.secrets import SecretStore, keyring_problem
from tray_app.core.tasks import in_daemon_thread

log = logging.getLogger(__name__)

NO_CLI = (
    "clearml-session is not installed next to the tray nor on PATH (pip install clearml-session),"
    " and no other one is set in Settings."
)
# The CLI reads its state file but never writes its defaults (with the password) into it.
NO_STORED_DEFAULTS = "--disable-store-defaults"
# How long a launch waits for the keyring to give a fixed password (a locked one waits for the
# user at its unlock prompt: the launch says so instead of hanging).
KEYRING_WAIT_S = 8.0


@dataclass(frozen=True, slots=True)
class Prepared:
    ok: bool
    message: str = ""  # why it cannot start, for the user
    argv: tuple[str, ...] = ()
    state_text: str = field(default="", repr=False)  # the CLI's state file ("": none needed)


def prepare(
    preset: Preset,
    *,
    executable: Sequence[str] | None,
    state_file: str,
    password: str | None = None,
    missing: str = NO_CLI,
) -> Prepared:
    """`clearml-session` creating a session from `preset`; `password`: the fixed one read from
    the keyring by the caller. `executable` is the command that runs the CLI (the bundled one
    is the packaged executable and its hidden entry); `missing` says why there is none."""
    if preset.password_policy is PasswordPolicy.FIXED and not password:
        return Prepared(
            False,
            f"The preset “{preset.name}” uses a fixed password, but none is stored in the "
            "keyring for it. Set it in the preset's Advanced section and save the preset.",
        )
    if not executable:
        return Prepared(False, missing)
    try:
        argv = presets_mod.build_argv(
            preset, executable=executable[0], config_file=state_file, password=password
        )
    except presets_mod.PresetError as exc:
        return Prepared(False, f"The preset “{preset.name}” is not valid: {exc}")
    state = presets_mod.state_file_text(password) if password else ""
    argv = [*executable, *argv[1:], NO_STORED_DEFAULTS]
    return Prepared(True, argv=tuple(argv), state_text=state)


def prepare_attach(
    session_id: str, *, executable: Sequence[str] | None, state_file: str, missing: str = NO_CLI
) -> Prepared:
    """`clearml-session --attach <id>`: a tunnel to a running session."""
    if not executable:
        return Prepared(False, missing)
    argv = presets_mod.build_attach_argv(
        session_id, executable=executable[0], config_file=state_file
    )
    return Prepared(True, argv=(*executable, *argv[1:], NO_STORED_DEFAULTS))


IncludeQuestion = Callable[[str, Callable[[], None] | None], Coroutine[Any, Any, bool]]


@dataclass(frozen=True, slots=True)
class Launched:
    key: str | None  # the tunnel's key; None when nothing started
    message: str = ""  # why not, in words


class Creator(Protocol):
    async def create(self, preset: Preset, password: str | None = None) -> Launched: ...


class LaunchFlow:
    def __init__(
        self,
        tunnels: Creator,
        *,
        notify: Notify,
        secrets: SecretStore,
        ask: Ask | None = None,
        foreign: Callable[[Preset], bool] = lambda preset: False,
        remember_queue: Callable[[str], Awaitable[None]] | None = None,
        include: IncludeQuestion | None = None,
        wants_editor: Callable[[], bool] = lambda: False,
        spawn: Spawn | None = None,
        server: Callable[[], SessionService | None] = lambda: None,
    ) -> None:
        self._tunnels = tunnels
        self._server = server  # its queues: is anyone serving the preset's?
        self._include = include  # SessionHosts.include_up_front
        self._wants_editor = wants_editor  # the editor opens when a new session is ready
        self._spawn = spawn
        self._ask = ask
        self._foreign = foreign  # a preset this user did not write (a repository's)
        self._approved: set[str] = set()  # foreign presets launched once this run, as shown
        self._notify = notify
        self._secrets = secrets
        self._remember_queue = remember_queue  # the next New session dialog starts on it

    async def launch(self, preset: Preset) -> str | None:
        """The launch key, or None when it could not start (the user was told why)."""
        if not await self._disclosed(preset) or not await self._queue_served(preset):
            return None
        self._include_up_front(preset)
        password = None
        if preset.password_policy is PasswordPolicy.FIXED:
            password, problem = await self._fixed_password(preset)
            if problem:
                self._notify.notify("error", "Session not started", problem, critical=True)
                return None
        launched = await self._tunnels.create(preset, password)
        if launched.key is None:
            self._notify.notify("error", "Session not started", launched.message, critical=True)
            return None
        if self._remember_queue is not None:
            await self._remember_queue(preset.queue)
        # The registry posts "Starting a session" (with Follow log and Cancel) itself: every
        # launch and attach says so, whichever way it was started.
        log.info("launching a session from preset %r (%s)", preset.name, launched.key)
        return launched.key

    async def _queue_served(self, preset: Preset) -> bool:
        """A queue no worker serves takes the session and keeps it waiting: asked first. The
        safe answer (Enter) is not to launch."""
        service = self._server()
        if service is None or self._ask is None:
            return True
        try:
            queues = await service.queues()
        except ClearMLError as exc:  # the CLI says what is wrong with the server, if anything
            log.info("queues not checked before the launch: %s", exc)
            return True
        queue = next((q for q in queues if q.name == preset.queue), None)
        if queue is None or queue.total_workers:
            return True
        question = Question(
            f"No worker serves “{preset.queue}”",
            f"No worker serves “{preset.queue}”: the session will wait in the queue until an "
            "agent serves it (your ClearML admin starts one with `clearml-agent daemon "
            f"--queue {preset.queue}`).",
            ("Launch anyway", "Cancel"),
            default=1,
        )
        if await confirm(self._ask, question):
            return True
        log.info("launch of %r on the unserved queue %r declined", preset.name, preset.queue)
        return False

    def _include_up_front(self, preset: Preset) -> None:
        """The editor opens when the session is ready, through the Include line: asked now, at
        the click, not in the middle of the launch. The launch does not wait for the answer
        (the session takes a while to come up; its ready joins the same question)."""
        include, spawn = self._include, self._spawn
        if include is None or spawn is None or not self._wants_editor():
            return
        purpose = f"Starting “{preset.session_name or preset.name}” and opening it in VS Code"

        def again() -> None:
            spawn(include(purpose, None))

        spawn(include(purpose, again))

    async def _fixed_password(self, preset: Preset) -> tuple[str | None, str]:
        """The preset's stored password, or why it cannot be read now (in words)."""
        name = preset.password_keyring_key()
        # The keyring may be a D-Bus service, or wait for its unlock prompt as long as the user
        # leaves it open: read in a daemon thread this flow stops waiting for (nor does Quit).
        reading = in_daemon_thread(lambda: self._secrets.get(name), "keyring-read")
        try:
            async with asyncio.timeout(KEYRING_WAIT_S):
                return await asyncio.shield(reading), ""
        except TimeoutError:
            reading.add_done_callback(lambda f: f.cancelled() or f.exception())
            why = (
                "the keyring did not answer within a few seconds (it may be locked and "
                "waiting for you to unlock it)"
            )
        except SecretStoreError as exc:
            cause = exc.__cause__
            why = keyring_problem(cause) if cause is not None else str(exc)
        except Exception as exc:  # a broken backend: the same words, never a traceback
            why = keyring_problem(exc)
        log.warning("fixed password of %r not read: %s", preset.name, why)
        return None, (
            f"The preset “{preset.name}” uses a fixed password, which could not be read from "
            f"the keyring: {why.rstrip('.')}. Unlock your keyring and try again."
        )

    async def launch_named(self, name: str, presets: Sequence[Preset]) -> str | None:
        """The Presets submenu: one click, one launch."""
        preset = next((p for p in presets if p.name == name), None)
        if preset is None:
            self._notify.notify("error", "Preset not found", f"No preset is named “{name}”.")
            return None
        return await self.launch(preset)

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
