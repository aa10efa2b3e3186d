"""The live `clearml-session` children, and what their output means for their tunnels.

`TunnelRegistry` creates children (a new session from a preset, or `--attach` to a running
one), keeps them under a key (a launch id until the CLI names the session, its id after), and
carries out what the reducer (`reducer.react`) decides for each parsed line: answer a known
prompt, ask the user an unknown one, post a notice, prepare the Host block and login, open the
editor, hand the password over, terminate. It runs each child through the `ChildProcess` port
and tells the views through `TunnelEvents`; it never imports Qt, so it is table-tested with a
scripted child from the real transcripts.

Prewarmed attaches (opened ahead of a Connect nobody clicked yet, `prewarm.py`) stay silent:
no notice, no Host block, no editor, until a Connect `promote`s them; unused, they are
`retire`d and leave nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Protocol

from tray_app.core.atomic import atomic_write_text
from tray_app.core.ports import Ask, Desktop, Notify, Spawn
from tray_app.core.redact import register_secret
from tray_app.core.server.models import Session
from tray_app.core.settings import presets as presets_mod
from tray_app.core.settings.presets import Preset
from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.children import ChildPidFile, guarded_argv, tree_rss_mb
from tray_app.core.tunnels.environment import ChildEnvironment
from tray_app.core.tunnels.launch import NO_CLI, Launched, Prepared, prepare, prepare_attach
from tray_app.core.tunnels.model import (
    LaunchPolicy,
    TunnelInfo,
    TunnelModel,
    TunnelState,
)
from tray_app.core.tunnels.output import ChildOutput
from tray_app.core.tunnels.parser import SessionEvent, SessionLogParser
from tray_app.core.tunnels.password_ahead import Hold, PasswordAhead
from tray_app.core.tunnels.ports import ChildProcess, ChildSpec, StartChild, TunnelEvents
from tray_app.core.tunnels.reducer import (
    AskUser,
    Effect,
    LoginAhead,
    Notice,
    OpenEditor,
    Terminate,
    TunnelUp,
    WriteStdin,
    finished,
    progress_notice,
    react,
    ready_notice,
)
from tray_app.core.untrusted import safe_http_url
from tray_app.core.wording import session_title, short_id

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_MS = 20000
# clearml-session looks for free local ports (8022, 8878, … and up) when it sets up its tunnel,
# and its ssh binds them only once logged in: two that start together pick the same ports, and
# one of them then forwards nothing of its own, for good (it keeps the ports it picked). So an
# attach starts once the others have bound theirs (their tunnel is up or failed), or this long.
PORT_CHOICE_S = 8.0


class Hosts(Protocol):
    """`SessionHosts`, as the registry sees it."""

    def tunnel_up(self, info: TunnelInfo, password: str) -> None: ...

    def copy_ssh(self, info: TunnelInfo) -> None: ...

    def keep_only(self, live: set[str]) -> None: ...

    async def remove_hosts(self, session_ids: set[str] | None) -> None: ...


class Editor(Protocol):
    """`EditorOpener`, as the registry sees it."""

    def open(self, info: TunnelInfo, explicit: bool = False) -> None: ...

    def check_soon(self) -> None: ...


def tunnel_jupyter_url(info: TunnelInfo) -> str | None:
    """The tunnel's JupyterLab URL if it is http(s) to this computer's end of the tunnel
    (what the CLI prints), else None: the same check as the menu's Open JupyterLab."""
    return safe_http_url(info.jupyter_url or "", "localhost")


class Child:
    """One child: its process, its output, its tunnel's model and what it knows in secret."""

    def __init__(
        self,
        registry: TunnelRegistry,
        model: TunnelModel,
        policy: LaunchPolicy,
        state_file: Path,
        output: ChildOutput,
    ) -> None:
        self._registry = registry
        self.model = model
        self.policy = policy
        self.state_file = state_file  # the CLI's own, which may hold the session password
        self.output = output
        self.process: ChildProcess | None = None
        self.exit_code: int | None = None
        self.password: str | None = None
        self.hold: Hold | None = None  # its first ssh waits for the password on this
        self.restart = False  # ended to be started again (a reconnect where stdin is ignored)
        # Set once its local ports are bound (tunnel up), or it failed or ended.
        self.ports_bound = asyncio.Event()

    @property
    def info(self) -> TunnelInfo:
        return self.model.info

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running()

    # --- ChildListener ----------------------------------------------------------------------------
    def received(self, data: bytes) -> None:
        self.output.received(data)

    def tick(self) -> None:
        self.output.tick()

    def finished(self, code: int, error: str = "") -> None:
        if error:
            log.error("session %s: %s", self.info.key, error)
            self.output.failed_to_start(error)
        self.exit_code = code
        self.output.finished(code)
        log.info("session %s: clearml-session exited with %s", self.info.key, code)
        self._registry._finished(self, code)


class TunnelRegistry:
    """Owns the `clearml-session` children; the views see them through `tunnels()`."""

    def __init__(
        self,
        *,
        start_child: StartChild,
        environment: ChildEnvironment,
        events: TunnelEvents,
        notify: Notify,
        ask: Ask,
        desktop: Desktop,
        spawn: Spawn,
        settings: Callable[[], Settings],
        hosts: Hosts,
        editor: Editor,
        ahead: PasswordAhead | None = None,
        session: Callable[[str], Session | None] = lambda session_id: None,
        cancel: Callable[[str], None] | None = None,
        parser: Callable[[], SessionLogParser] = SessionLogParser,
        clock: Callable[[], float] = time.monotonic,
        stdin_commands: bool = os.name != "nt",
        stop_session: Callable[[str], None] = lambda session_id: None,
    ) -> None:
        self._start_child = start_child
        self._environment = environment
        self._events = events
        self._notify = notify
        self._ask = ask
        self._desktop = desktop
        self._spawn = spawn
        self._settings = settings
        self._hosts = hosts
        self._editor = editor
        self._ahead = ahead
        self._session = session
        self._cancel = cancel  # a progress notice's Cancel (CancelFlow asks what to do)
        self._parser = parser
        self._clock = clock  # when a quiet child's pending question counts as asked
        # clearml-session reads "r" and "Shutdown" from its stdin on POSIX only: on Windows it
        # polls the console keyboard (msvcrt.kbhit), so piped text is ignored. There a
        # reconnect restarts the CLI and a shutdown ends it and stops the session by the API.
        self._stdin_commands = stdin_commands
        self._stop_session = stop_session
        self._children: dict[str, Child] = {}
        self._aliases: dict[str, str] = {}  # launch key → current key (session id once known)
        self._attaching: dict[str, bool] = {}  # session id → still "ahead of a click" (prewarm)
        self._counter = itertools.count(1)
        self.pid_file = ChildPidFile(environment.pid_file)

    async def start(self) -> None:
        """At start: what a run that did not quit cleanly left (children, Host blocks,
        markers) is ended, and the children's environment prepared."""
        await asyncio.to_thread(self.pid_file.reap_stale)
        await self._environment.prepare()
        self._spawn(self._hosts.remove_hosts(None))

    # --- starting children ------------------------------------------------------------------------
    async def create(self, preset: Preset, password: str | None = None) -> Launched:
        """A new session from `preset`; `password` is the fixed one read from the keyring."""
        key = f"launch-{next(self._counter)}"
        state_file = self._environment.state_file(key)
        command = self._environment.command()
        prepared = prepare(
            preset,
            executable=command,
            state_file=str(state_file),
            password=password,
            missing=self._environment.problem or NO_CLI,
        )
        if not prepared.ok:
            return Launched(None, prepared.message)
        if password:
            register_secret(password)
        if prepared.state_text:
            try:  # the CLI reads it from here: never argv (world-readable in /proc)
                await asyncio.to_thread(
                    atomic_write_text, state_file, prepared.state_text, mode=0o600
                )
            except OSError as exc:
                return Launched(
                    None, f"Could not prepare the session's state file: {exc.strerror or exc}"
                )
        hold = await self._ahead.hold(key) if self._ahead is not None else None
        policy = self._policy(
            creating=True, restore_workspace=preset.restore_workspace, queue=preset.queue
        )
        self._start(
            key,
            prepared,
            state_file,
            label=preset.session_name or preset.name,
            folder=preset.user_folder,
            policy=policy,
            sid=None,
            hold=hold,
        )
        self._editor.check_soon()
        return Launched(key)

    def attach(self, session_id: str, label: str = "", *, prewarm: bool = False) -> None:
        """A tunnel to a running session, its ssh handed the password ahead (the CLI then
        skips its 5 s wait). `prewarm`: nobody clicked yet; a Connect meanwhile takes it."""
        existing = self._find_session(session_id)
        if existing is not None and existing.running:
            if not prewarm:
                self.promote(existing.info.key)
            return
        if session_id in self._attaching:
            if not prewarm:
                self._attaching[session_id] = False
            return
        self._attaching[session_id] = prewarm
        self._spawn(self.attach_now(session_id, label))

    async def attach_now(self, session_id: str, label: str = "") -> str | None:
        """`attach`'s work: the password held, then the CLI started; its key (None: none)."""
        key = f"attach-{next(self._counter)}"
        hold: Hold | None = None
        try:
            if self._ahead is not None and self._session(session_id) is not None:
                hold = await self._ahead.hold(key, session_id)  # the password asked for now
            await self._after_port_choices()
        finally:
            # Until here a second Connect to the session joins this attach (`attach`).
            prewarm = self._attaching.pop(session_id, False)
        state_file = self._environment.state_file(key)
        command = self._environment.command()
        prepared = prepare_attach(
            session_id,
            executable=command,
            state_file=str(state_file),
            missing=self._environment.problem or NO_CLI,
        )
        if not prepared.ok:
            if hold is not None and self._ahead is not None:
                self._ahead.release(hold)
            if not prewarm:
                self._notify.notify("error", "Cannot connect", prepared.message, critical=True)
            return None
        self._start(
            key,
            prepared,
            state_file,
            # Names repeat ("Interactive Session"): notices name it with its short id.
            label=label if short_id(session_id) in label else session_title(label, session_id),
            folder="",
            policy=self._policy(creating=False, quiet=prewarm),
            sid=session_id,
            hold=hold,
        )
        if not prewarm:
            self._editor.check_soon()
        return key

    def _start(
        self,
        key: str,
        prepared: Prepared,
        state_file: Path,
        *,
        label: str,
        folder: str,
        policy: LaunchPolicy,
        sid: str | None,
        hold: Hold | None,
    ) -> Child:
        log_path = self._environment.log_path(key)
        info = TunnelInfo(
            key=key,
            session_id=sid,
            state=TunnelState.LAUNCHING if policy.creating else TunnelState.CONNECTING,
            label=label,
            remote_folder=folder,
            log_path=log_path,
            last_message="Starting clearml-session",
            prewarmed=policy.quiet,
        )
        holder: list[Child] = []
        output = ChildOutput(
            key,
            log_path,
            # The first key, for good: a window following the log keeps following it when the
            # CLI names the session (and the tunnel's key becomes its id).
            on_text=lambda text: self._events.output(key, text),
            on_events=lambda events: self._on_events(holder[0], events),
            parser=self._parser(),
            clock=self._clock,
        )
        child = Child(self, TunnelModel(info), policy, state_file, output)
        child.hold = hold
        holder.append(child)
        self._children[key] = child
        self._aliases[key] = key
        env = self._environment.env(hold.env if hold is not None else {})
        spec = ChildSpec(key, tuple(guarded_argv(prepared.argv)), env, Path.home())
        child.process = self._start_child(spec, child)
        command = presets_mod.display_command(list(prepared.argv))
        log.info("session %s: running %s", key, command)
        output.begin(command)
        child.process.start()
        self.pid_file.add(child.process.pid)
        self._changed()
        if not policy.quiet:
            self._notice(child, progress_notice(child.model, creating=policy.creating))
        return child

    # --- the user's requests ----------------------------------------------------------------------
    def promote(self, key: str) -> TunnelInfo | None:
        """The user asked for this prewarmed tunnel: from now on it is like any other. Ready
        already: its host is prepared and "Session ready" posted (the caller opens the editor);
        still coming up: the progress notice, and the editor opens when it is ready."""
        child = self._child(key)
        if child is None or not child.policy.quiet:
            return child.info if child else None
        child.policy = replace(child.policy, quiet=False)
        self._set(child, child.model.with_info(prewarmed=False))
        log.info("session %s: prewarmed tunnel taken into use (%s)", key, child.info.state.value)
        if child.info.state is TunnelState.READY:
            self._carry_out(child, [TunnelUp(child.password or ""), ready_notice(child.model)])
        elif child.info.live:
            self._notice(child, progress_notice(child.model, creating=False))
        return child.info

    def retire(self, key: str) -> None:
        """End a prewarmed tunnel nobody used, without a word; it leaves nothing behind."""
        child = self._child(key)
        if child is not None and child.policy.quiet:
            log.info("session %s: prewarmed tunnel not used; ending it", key)
            self.disconnect(key)

    def show_progress(self, key: str) -> None:
        """Connect on a tunnel that is still coming up: say so, with its log to follow."""
        child = self._child(key)
        if child is not None:
            self._notice(child, progress_notice(child.model, creating=child.policy.creating))

    def reconnect(self, key: str, reason: str = "Reconnecting") -> None:
        child = self._child(key)
        if child is None or child.process is None or not child.running:
            return
        if not self._stdin_commands:
            self._restart(child, reason)
            return
        child.model = replace(child.model, retries=0)
        child.process.write("r\n")
        self._set(child, child.model.with_info(state=TunnelState.CONNECTING, last_message=reason))

    def _restart(self, child: Child, reason: str) -> None:
        """Reconnect where the CLI cannot be told to: end it, then attach again once it ended."""
        if child.info.session_id is None or child.process is None:
            return
        log.info("session %s: restarting clearml-session (%s)", child.info.key, reason)
        child.restart = True
        child.model = replace(child.model, stopping=True)  # its end is ours: no notice
        self._set(child, child.model.with_info(state=TunnelState.CONNECTING, last_message=reason))
        child.process.terminate_later()

    def cancel(self, key: str, title: str, body: str) -> None:
        """End a launch or attach the user cancelled: the CLI goes, and its progress notice
        is replaced by `title`/`body` (the same tag), so no "Starting a session" stays up."""
        child = self._child(key)
        if child is None:
            return
        self.disconnect(key)
        log.info("session %s: cancelled (%s)", key, body)
        self._notify.notify("info", title, body, tag=self._tag(child))

    def launching(self, key: str) -> bool:
        """Whether the child creates a new session (else it attaches to one)."""
        child = self._child(key)
        return child is not None and child.policy.creating

    def disconnect(self, key: str) -> None:
        child = self._child(key)
        if child is None or child.process is None or not child.running:
            return
        child.model = replace(child.model, stopping=True)
        child.process.terminate_later()

    def shutdown(self, key: str) -> None:
        child = self._child(key)
        if child is None or child.process is None:
            return
        self._set(child, child.model.with_info(last_message="Shutting down the remote session"))
        if self._stdin_commands:
            child.process.write("Shutdown\n")
            return
        if child.info.session_id:
            self._stop_session(child.info.session_id)
        child.model = replace(child.model, stopping=True)
        child.process.terminate_later()

    def answer(self, key: str, text: str) -> None:
        """Reply to a question of the CLI's that was passed to the user."""
        child = self._child(key)
        if child is not None and child.process is not None:
            child.process.write(text + "\n")

    def stop_all(self, shutdown_remote: bool) -> None:
        """End every child before the app quits; never leaves an orphan behind."""
        children = [c for c in self._children.values() if c.running and c.process is not None]
        # The CLI reads stdin only while its tunnel is up: only READY children can pass
        # "Shutdown" on; the others' remote sessions keep running (the caller may stop them
        # through the API).
        asked = [c for c in children if shutdown_remote and c.info.state is TunnelState.READY]
        if not self._stdin_commands:  # the CLI cannot be told: the API stops them
            for child in children:
                if shutdown_remote and child.info.session_id:
                    self._stop_session(child.info.session_id)
            asked = []
            shutdown_remote = False
        for child in children:
            child.model = replace(child.model, stopping=True)
            if child in asked:
                assert child.process is not None
                child.process.write("Shutdown\n")
            elif shutdown_remote:
                log.warning(
                    "session %s: no tunnel, so clearml-session cannot shut it down; it keeps "
                    "running remotely",
                    child.info.session_id or child.info.key,
                )
        for child in asked:
            assert child.process is not None
            if child.running and not child.process.wait_finished(SHUTDOWN_GRACE_MS):
                log.warning("session %s: no exit after Shutdown", child.info.key)
        for child in children:
            assert child.process is not None
            child.process.stop()

    def close(self) -> None:
        """Every child stopped and forgotten (tests; Quit stops them with `stop_all`)."""
        self.stop_all(shutdown_remote=False)
        for child in self._children.values():
            child.output.close()
            if child.process is not None:
                child.process.release()
        self._children.clear()
        self._aliases.clear()

    # --- what the views read ----------------------------------------------------------------------
    def tunnels(self) -> Mapping[str, TunnelInfo]:
        return {child.info.key: child.info for child in self._children.values()}

    def tunnel_for(self, session_id: str) -> TunnelInfo | None:
        """The session's tunnel: a live one first, else the last that ended."""
        tunnels = [c.info for c in self._children.values() if c.info.session_id == session_id]
        live = [t for t in tunnels if t.live]
        candidates = live or tunnels
        return candidates[0] if candidates else None

    def child(self, key: str) -> Child | None:
        return self._child(key)

    def info(self, key: str) -> TunnelInfo | None:
        """The tunnel under any of its keys (a launch's, or the session id it got later)."""
        child = self._child(key)
        return child.info if child is not None else None

    def prewarmed_memory_mb(self) -> dict[str, float]:
        """Resident memory of each live prewarmed child (its clearml-session and ssh), by key;
        reads /proc: call it off the event loop."""
        found: dict[str, float] = {}
        for child in list(self._children.values()):
            if child.policy.quiet and child.info.live and child.process is not None:
                rss = tree_rss_mb(child.process.pid)
                if rss is not None:
                    found[child.info.key] = rss
        return found

    def log_text(self, key: str) -> str:
        child = self._child(key)
        return child.output.text() if child is not None else ""

    def log_key(self, key: str) -> str:
        """The key a child's output is told under (its first one), for any of its keys."""
        child = self._child(key)
        return child.output.key if child is not None else key

    def log_labels(self) -> dict[str, str]:
        """Each child's log key → how it is named now (the preset's name, then the session's
        name and short id once the CLI has created the task)."""
        return {c.output.key: c.info.label for c in self._children.values()}

    def log_view(self, key: str) -> tuple[str, str, str]:
        """What Follow log opens for any key of a child: its log key, text so far and name."""
        log_key = self.log_key(key)
        return log_key, self.log_text(key), self.log_labels().get(log_key, "")

    def launcher_log(self, session_id: str) -> tuple[str, str] | None:
        """The session's clearml-session log (its key and the text so far), when it has had a
        child this run: Show log offers it beside the server's console log."""
        tunnel = self.tunnel_for(session_id)
        if tunnel is None or tunnel.prewarmed or tunnel.log_path is None:
            return None
        return self.log_key(tunnel.key), self.log_text(tunnel.key)

    def password(self, key: str) -> str | None:
        """The session's SSH password learnt from the CLI, never logged."""
        child = self._child(key)
        return child.password if child else None

    # --- internals --------------------------------------------------------------------------------
    def _policy(self, **fields: bool | str) -> LaunchPolicy:
        settings = self._settings()
        return LaunchPolicy(
            retry_limit=settings.tunnel_retry_limit,
            open_editor_when_ready=settings.open_editor_when_ready,
            **fields,  # type: ignore[arg-type]
        )

    def _child(self, key: str) -> Child | None:
        current = self._aliases.get(key, key)
        return self._children.get(current)

    def _find_session(self, session_id: str) -> Child | None:
        return next((c for c in self._children.values() if c.info.session_id == session_id), None)

    async def _after_port_choices(self) -> None:
        """Wait (a little) until the children still choosing local ports have bound them."""
        choosing = [
            c.ports_bound
            for c in self._children.values()
            if c.running and not c.ports_bound.is_set()
        ]
        if not choosing:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PORT_CHOICE_S):
                for bound in choosing:
                    await bound.wait()

    def _set(self, child: Child, model: TunnelModel) -> None:
        old_sid = child.info.session_id
        child.model = model
        if model.info.state in (TunnelState.READY, TunnelState.FAILED, TunnelState.CLOSED):
            child.ports_bound.set()
        sid = model.info.session_id
        if sid and sid != old_sid:
            self._rekey(child, sid)
            # The CLI named the session: it read its state file (a fixed password) long ago.
            self._environment.remove_state_file(child.state_file)
        self._changed()

    def _rekey(self, child: Child, session_id: str) -> None:
        old = child.info.key
        if old == session_id or session_id in self._children:
            return
        del self._children[old]
        self._children[session_id] = child
        for alias, target in list(self._aliases.items()):
            if target == old:
                self._aliases[alias] = session_id
        self._aliases[session_id] = session_id
        child.model = child.model.with_info(key=session_id)

    def _changed(self) -> None:
        """The views redraw; a session whose tunnel has ended loses its Host block and master
        (and the tray its password)."""
        self._events.changed()
        live = {
            c.info.session_id for c in self._children.values() if c.info.session_id and c.info.live
        }
        self._hosts.keep_only(live)

    def _on_events(self, child: Child, events: list[SessionEvent]) -> None:
        for event in events:
            model, effects = react(child.model, event, child.policy)
            if model != child.model:
                self._set(child, model)
            self._carry_out(child, effects)

    def _carry_out(self, child: Child, effects: list[Effect]) -> None:
        key = child.info.key
        for effect in effects:
            if isinstance(effect, WriteStdin):
                log.info("session %s: answering %r", key, effect.text.strip())
                if child.process is not None:
                    child.process.write(effect.text)
            elif isinstance(effect, AskUser):
                log.info("session %s: asking the user: %s", key, effect.question)
                self._set(child, child.model.with_info(last_message=effect.question))
                self._spawn(self._ask_user(key, effect.question))
            elif isinstance(effect, TunnelUp):
                if effect.password:
                    child.password = effect.password
                    register_secret(effect.password)
                if not child.policy.quiet:  # prewarmed: no Host block nor login until promoted
                    self._hosts.tunnel_up(child.info, child.password or "")
            elif isinstance(effect, OpenEditor):
                self._editor.open(child.info)
            elif isinstance(effect, LoginAhead):
                self._hand_over(child, effect)
            elif isinstance(effect, Notice):
                self._notice(child, effect)
            elif isinstance(effect, Terminate):
                log.warning("session %s: giving up; stopping clearml-session", key)
                if child.process is not None:
                    child.process.terminate_later()

    def _hand_over(self, child: Child, login: LoginAhead) -> None:
        """The CLI is about to log in to its machine (its ssh waits on the marker): hand that
        ssh the password for this login, so the CLI skips its wait."""
        hold = child.hold
        if hold is None or self._ahead is None:
            return
        if not child.info.session_id:
            self._ahead.release(hold)
            child.hold = None
            return
        self._spawn(
            self._ahead.hand_over(hold, child.info.session_id, login.user, login.host, login.port)
        )

    async def _ask_user(self, key: str, question: str) -> None:
        """A question of clearml-session's that we do not answer for the user."""
        answer = await self._ask.ask_text("clearml-session asks", question)
        if answer is None:
            self.disconnect(key)
        else:
            self.answer(key, answer)

    def _notice(self, child: Child, notice: Notice) -> None:
        key = child.info.key
        actions: dict[str, Callable[[], None]] = {
            "open_editor": partial(self._open_editor, key),
            "copy_ssh": partial(self._copy_ssh, key),
            "show_log": partial(self._events.follow_log, key),
            "disconnect": partial(self.disconnect, key),
            "cancel": partial(self._cancel or self.disconnect, key),
        }
        if tunnel_jupyter_url(child.info) is not None:  # the menu's check, nothing laxer
            actions["open_jupyter"] = partial(self._open_jupyter, key)
        buttons = [(label, actions[a]) for label, a in notice.buttons if a in actions]
        body = notice.body
        if notice.last_lines and child.output.last_lines:
            body += "\n" + "\n".join(list(child.output.last_lines)[-5:])
        log.info("notify %s: %s", notice.kind, notice.title)
        self._notify.notify(
            notice.kind, notice.title, body, buttons, critical=notice.critical, tag=self._tag(child)
        )

    @staticmethod
    def _tag(child: Child) -> str:
        return f"tunnel-{id(child)}"  # one notification per child: each replaces the last

    def _open_url(self, url: str) -> None:
        self._desktop.open_url(url)

    def _open_jupyter(self, key: str) -> None:
        """The notice's Open JupyterLab: the tunnel's local URL as it is now (a reconnect may
        have changed it), checked again like the menu's."""
        child = self._child(key)
        url = tunnel_jupyter_url(child.info) if child is not None else None
        if url is not None:
            self._desktop.open_url(url)
            return
        log.warning("JupyterLab address of %s refused or gone", key)
        self._notify.notify(
            "error",
            "JupyterLab not opened",
            "The tunnel's JupyterLab address is gone or does not point at this computer "
            "over http(s).",
            critical=True,
        )

    def _copy_ssh(self, key: str) -> None:
        child = self._child(key)
        if child is not None:
            self._hosts.copy_ssh(child.info)

    def _open_editor(self, key: str) -> None:
        child = self._child(key)
        if child is not None:
            self._editor.open(child.info, explicit=True)

    def _finished(self, child: Child, code: int) -> None:
        child.ports_bound.set()
        # A fixed password's state file (the CLI read it at its start): gone with its tunnel.
        self._environment.remove_state_file(child.state_file)
        if child.hold is not None and self._ahead is not None:
            self._ahead.release(child.hold)
        child.hold = None
        if child.process is not None:
            self.pid_file.discard(child.process.pid)
        model, effects = finished(child.model, code, child.policy)
        self._set(child, model)
        self._carry_out(child, effects)
        if child.restart and child.info.session_id:
            child.restart = False
            self.attach(child.info.session_id, child.info.label, prewarm=child.policy.quiet)
        if child.policy.quiet:
            # Nobody used it: no menu row, no log file, nothing left of it.
            self._children.pop(child.info.key, None)
            self._aliases = {k: v for k, v in self._aliases.items() if v != child.info.key}
            child.output.close(remove=True)
            if child.process is not None:
                child.process.release()
            self._changed()
