"""`clearml-session` children: one QProcess per session (`SessionProcess`) and their registry.

`SessionLauncher` implements `core.tunnels.Launcher`. It only runs argv prepared by
`core.presets` (never a shell string), answers the CLI's known prompts on stdin, turns the
parsed output (`core.session_log`) into tunnel states and notifications, and makes sure no
child — nor the `ssh` the CLI spawns through a pty in a session of its own — outlives the app.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import logging
import os
import re
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import platformdirs
from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from tray_app.core import presets as presets_mod
from tray_app.core.presets import Preset
from tray_app.core.redact import StreamRedactor, register_secret
from tray_app.core.settings import Settings
from tray_app.core.tunnels import TunnelInfo, TunnelState

log = logging.getLogger(__name__)

APP_DIR_NAME = "clearml-tray"
TERMINATE_GRACE_MS = 3000
SHUTDOWN_GRACE_MS = 20000
LAST_LINES = 12
QUIET_MS = 1500


class NotifierLike(Protocol):
    def notify(
        self,
        kind: str,
        title: str,
        body: str,
        buttons: Any = (),
        *,
        critical: bool = False,
        on_clicked: Callable[[], None] | None = None,
    ) -> bool: ...


TunnelHook = Callable[[TunnelInfo], None]
SessionEvent = Any  # tray_app.core.session_log.SessionEvent: dataclasses with a `kind`


class ParserLike(Protocol):
    def feed(self, chunk: str) -> list[SessionEvent]: ...

    def close(self, exit_code: int | None = None) -> list[SessionEvent]: ...

    def pending_question(self) -> SessionEvent | None: ...


def default_parser() -> ParserLike:
    import importlib

    module = importlib.import_module("tray_app.core.session_log")
    parser: ParserLike = module.SessionLogParser()
    return parser


def find_executable(name: str = "clearml-session") -> str:
    """The CLI installed next to our interpreter (the venv's bin), else the one on PATH."""
    beside = Path(sys.executable).with_name(name + (".exe" if os.name == "nt" else ""))
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} was not found next to {sys.executable} nor on PATH")
    return found


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children first). The CLI's ssh runs in its own session
    (pexpect forks it on a pty with setsid), so killing our child's process group misses it."""
    try:
        import psutil  # type: ignore[import-untyped]

        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    except ImportError:
        pass
    parents: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) comes after the parenthesised command, which may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _signal_group(pid: int, sig: int) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class SessionProcess(QObject):
    """One running `clearml-session`: output → log file, redacted text and parsed events."""

    # PySide6 6.12.0 loses a reference to True on every Signal.emit and to None on every
    # QTimer.start/stop; a chatty child would eventually abort the interpreter. So the process
    # reports through plain callbacks and checks for quiet with one repeating timer.

    def __init__(
        self,
        key: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        config_file: Path | None = None,
        cwd: Path | None = None,
        parser: ParserLike | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.key = key
        self.argv = list(argv)
        self.log_path = log_path
        self.config_file = config_file
        self.exit_code: int | None = None
        # Parsed events go to a plain callback, not a Signal: PySide6 6.12 mis-counts references
        # when a list of Python objects crosses a Signal (a "bool_dealloc" abort at exit).
        self.on_events: Callable[[list[SessionEvent]], None] = lambda events: None
        self.on_output: Callable[[str], None] = lambda text: None  # redacted text
        self.on_finished: Callable[[int], None] = lambda code: None  # -1: crashed or killed
        self._last_output = 0.0
        self.last_lines: deque[str] = deque(maxlen=LAST_LINES)
        self._parser = parser if parser is not None else default_parser()
        self._redactor = StreamRedactor()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending_line = ""
        self._descendants: set[int] = set()
        self.process = QProcess(self)
        self.process.setProgram(argv[0])
        self.process.setArguments(argv[1:])
        qenv = QProcessEnvironment()
        for name, value in env.items():
            qenv.insert(name, value)
        qenv.insert("PYTHONUNBUFFERED", "1")
        self.process.setProcessEnvironment(qenv)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        if cwd is not None:
            self.process.setWorkingDirectory(str(cwd))
        if os.name == "posix":
            # Own session and process group: signals reach the whole tree, and a terminal's
            # Ctrl-C or hang-up does not.
            params = QProcess.UnixProcessParameters()
            params.flags = QProcess.UnixProcessFlag.CreateNewSession
            self.process.setUnixProcessParameters(params)
        # Escalation after terminate_later(); owned here so it dies with the process object.
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.kill)
        # A question the parser does not know is only recognisable by the child going quiet.
        self._quiet_timer = QTimer(self)
        self._quiet_timer.setInterval(QUIET_MS // 3)
        self._quiet_timer.timeout.connect(self._check_quiet)
        self._asked: set[str] = set()
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # Launch keys restart at 1 with every app run: a file left by an earlier run is replaced.
        self._log = log_path.open("w", encoding="utf-8")

    @property
    def pid(self) -> int:
        return int(self.process.processId())

    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def start(self) -> None:
        command = presets_mod.display_command(self.argv)
        log.info("session %s: running %s", self.key, command)
        self._write_log(f"$ {command}\n")
        self.process.start()
        self._quiet_timer.start()

    def write(self, text: str) -> None:
        if self.running():
            self.process.write(text.encode())

    def terminate(self) -> None:
        """SIGTERM to the child's group and every descendant (the pty'd ssh included)."""
        if not self.running():
            return
        self._descendants.update(descendants(self.pid))
        if os.name == "posix":
            _signal_group(self.pid, signal.SIGTERM)
            _signal_pids(sorted(self._descendants), signal.SIGTERM)
        else:
            self.process.terminate()

    def terminate_later(self, grace_ms: int = TERMINATE_GRACE_MS) -> None:
        """Terminate now and kill after `grace_ms` if still running; does not block."""
        if self.running():
            self.terminate()
            self._kill_timer.start(grace_ms)

    def kill(self) -> None:
        if self.running():
            self._descendants.update(descendants(self.pid))
            if os.name == "posix":
                _signal_group(self.pid, signal.SIGKILL)
            self.process.kill()
        if os.name == "posix":
            _signal_pids(sorted(self._descendants), signal.SIGKILL)

    def stop(self, grace_ms: int = TERMINATE_GRACE_MS) -> None:
        """Terminate, then kill after `grace_ms`; blocks until the child is gone."""
        self.terminate()
        if self.running() and not self.process.waitForFinished(grace_ms):
            log.warning("session %s: child did not end on SIGTERM; killing it", self.key)
        self.kill()
        if self.running():
            self.process.waitForFinished(grace_ms)

    def close_log(self) -> None:
        if not self._log.closed:
            self._log.close()

    def _write_log(self, text: str) -> None:
        if text and not self._log.closed:
            self._log.write(text)
            self._log.flush()

    def _read(self) -> None:
        raw = self._decoder.decode(bytes(self.process.readAllStandardOutput().data()))
        self._consume(raw)

    def _consume(self, raw: str) -> None:
        if not raw:
            return
        events = self._parser.feed(raw)
        text = self._redactor.feed(raw)
        if any(getattr(e, "kind", "") == "prompt" for e in events):
            # A prompt waits without a newline: show it now.
            text += self._redactor.flush()
        self._remember_lines(text)
        self._write_log(text)
        if text:
            self.on_output(text)
        if events:
            self.on_events(events)
        self._last_output = time.monotonic()

    def _check_quiet(self) -> None:
        if not self.running() or time.monotonic() - self._last_output < QUIET_MS / 1000:
            return
        question = self._parser.pending_question()
        if question is None or getattr(question, "question", "") in self._asked:
            return
        self._asked.add(str(getattr(question, "question", "")))
        text = self._redactor.flush()
        if text:
            self._remember_lines(text)
            self._write_log(text)
            self.on_output(text)
        self.on_events([question])

    def _remember_lines(self, text: str) -> None:
        self._pending_line += text
        *lines, self._pending_line = self._pending_line.replace("\r", "\n").split("\n")
        for line in lines:
            if line.strip():
                self.last_lines.append(line.rstrip())
        if len(self._pending_line) > 4096:
            self._pending_line = self._pending_line[-4096:]

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            message = f"could not start {self.argv[0]}: {self.process.errorString()}"
            log.error("session %s: %s", self.key, message)
            self._write_log(message + "\n")
            self.last_lines.append(message)
            self.exit_code = -1
            self.on_finished(-1)

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._consume(self._decoder.decode(b"", final=True))
        text = self._redactor.flush()
        if text:
            self._remember_lines(text + "\n")
            self._write_log(text)
            self.on_output(text)
        self._kill_timer.stop()
        self._quiet_timer.stop()
        self.exit_code = code if status == QProcess.ExitStatus.NormalExit else -1
        closing = self._parser.close(self.exit_code)
        if closing:
            self.on_events(closing)
        self._write_log(f"\n[exit {self.exit_code}]\n")
        log.info("session %s: clearml-session exited with %s", self.key, self.exit_code)
        # ssh may still hold the tunnel after the CLI itself died.
        if os.name == "posix":
            _signal_pids(sorted(self._descendants), signal.SIGTERM)
        self.on_finished(self.exit_code)


# Answers to the CLI's known prompts when creating a new session (run without --yes, because
# with --yes it attaches to the newest running session instead of creating one).
NEW_SESSION_ANSWERS: Mapping[str, str] = {
    "connect_active": "n",
    "select_session": "N",
    "launch": "y",
}


def _default_hook(name: str) -> TunnelHook:
    def hook(info: TunnelInfo) -> None:
        log.info("%s hook for %s (nothing wired in this build)", name, info.key)

    return hook


class _Child:
    """A SessionProcess plus what the launcher knows about it."""

    def __init__(self, proc: SessionProcess, info: TunnelInfo, preset: Preset | None) -> None:
        self.proc = proc
        self.info = info
        self.preset = preset
        self.retries = 0
        self.stopping = False  # we ended it on purpose (disconnect / retry policy / quit)
        self.failed_reported = False
        self.password: str | None = None


class LauncherSignals(QObject):
    tunnels_changed = Signal()
    session_event = Signal(str, object)  # key, SessionEvent (`event` is taken by QObject)
    output = Signal(str, str)  # key, redacted output text (log window)
    prompt_needed = Signal(str, str)  # key, question: an unknown prompt; reply with answer()


class SessionLauncher:
    """Owns the `clearml-session` children; the tray sees them through `tunnels()`.

    Not a QObject itself: `Launcher.disconnect(key)` would shadow `QObject.disconnect`. The
    signals live on `self.signals` and are exposed as attributes.
    """

    def __init__(
        self,
        settings: Callable[[], Settings],
        notifier: NotifierLike | None = None,
        *,
        env: Callable[[], Mapping[str, str]] | None = None,
        executable: str | None = None,
        data_dir: Path | None = None,
        password_for: Callable[[Preset], str | None] | None = None,
        on_ready: TunnelHook | None = None,
        open_editor: TunnelHook | None = None,
        copy_text: Callable[[str], None] | None = None,
        open_url: Callable[[str], None] | None = None,
        show_log: Callable[[str], None] | None = None,
        parser_factory: Callable[[], ParserLike] = default_parser,
        parent: QObject | None = None,
    ) -> None:
        self.signals = LauncherSignals(parent)
        self.tunnels_changed = self.signals.tunnels_changed
        self.event = self.signals.session_event
        self.output = self.signals.output
        self.prompt_needed = self.signals.prompt_needed
        self._parser_factory = parser_factory
        self._settings = settings
        self._notifier = notifier
        self._env = env or (lambda: dict(os.environ))
        self._executable = executable
        self._data_dir = data_dir or Path(platformdirs.user_data_dir(APP_DIR_NAME))
        self._password_for = password_for or (lambda preset: None)
        self.on_ready: TunnelHook = on_ready or _default_hook("on-ready")
        self.open_editor: TunnelHook = open_editor or _default_hook("open-editor")
        self._copy_text = copy_text or _copy_to_clipboard
        self._open_url = open_url or _open_url
        self._show_log = show_log or (lambda key: log.info("show log %s", key))
        self._children: dict[str, _Child] = {}
        self._aliases: dict[str, str] = {}  # launch key → current key (session id once known)
        self._counter = itertools.count(1)

    # --- Launcher protocol ----------------------------------------------------------------
    def create(self, preset: Preset) -> str:
        """Start a new session; raises PresetError (invalid) or FileNotFoundError (no CLI)."""
        key = f"launch-{next(self._counter)}"
        password = self._password_for(preset) if preset.password_policy == "fixed" else None
        if password:
            register_secret(password)
        config = self._config_file(key)
        argv = presets_mod.build_argv(
            preset, executable=self._exe(), config_file=str(config), password=password
        )
        label = preset.session_name or preset.name
        self._start(key, argv, config, label=label, preset=preset, session_id=None)
        return key

    def attach(self, session_id: str) -> str:
        existing = self._find_session(session_id)
        if existing is not None and existing.proc.running():
            return existing.info.key
        key = f"attach-{next(self._counter)}"
        config = self._config_file(key)
        argv = presets_mod.build_attach_argv(
            session_id, executable=self._exe(), config_file=str(config)
        )
        self._start(key, argv, config, label=session_id, preset=None, session_id=session_id)
        return key

    def reconnect(self, key: str) -> None:
        child = self._child(key)
        if child is not None:
            child.retries = 0
            child.proc.write("r\n")
            self._update(child, state=TunnelState.CONNECTING, last_message="Reconnecting")

    def disconnect(self, key: str) -> None:
        child = self._child(key)
        if child is None or not child.proc.running():
            return
        child.stopping = True
        child.proc.terminate_later()

    def shutdown(self, key: str) -> None:
        child = self._child(key)
        if child is not None:
            child.proc.write("Shutdown\n")
            self._update(child, last_message="Shutting down the remote session")

    def tunnels(self) -> Mapping[str, TunnelInfo]:
        return {child.info.key: child.info for child in self._children.values()}

    def stop_all(self, shutdown_remote: bool) -> None:
        children = [c for c in self._children.values() if c.proc.running()]
        # The CLI reads stdin only while its tunnel is up: only READY children can pass
        # "Shutdown" on; the others' remote sessions keep running (the caller may stop them
        # through the API).
        asked = [c for c in children if shutdown_remote and c.info.state is TunnelState.READY]
        for child in children:
            child.stopping = True
            if child in asked:
                child.proc.write("Shutdown\n")
            elif shutdown_remote:
                log.warning(
                    "session %s: no tunnel, so clearml-session cannot shut it down; it keeps "
                    "running remotely",
                    child.info.session_id or child.info.key,
                )
        for child in asked:
            if child.proc.running() and not child.proc.process.waitForFinished(SHUTDOWN_GRACE_MS):
                log.warning("session %s: no exit after Shutdown", child.info.key)
        for child in children:
            child.proc.stop()

    def close(self) -> None:
        """Stop every child and free the Qt objects now, while the application still exists."""
        self.stop_all(shutdown_remote=False)
        for child in self._children.values():
            child.proc.close_log()
        self._children.clear()
        self._aliases.clear()
        import shiboken6

        if shiboken6.isValid(self.signals):
            shiboken6.delete(self.signals)

    # --- extras for the UI ----------------------------------------------------------------
    def answer(self, key: str, text: str) -> None:
        """Reply to a prompt that was passed to the user (`prompt_needed`)."""
        child = self._child(key)
        if child is not None:
            child.proc.write(text + "\n")

    def process(self, key: str) -> SessionProcess | None:
        child = self._child(key)
        return child.proc if child else None

    def log_text(self, key: str) -> str:
        child = self._child(key)
        if child is None:
            return ""
        try:
            return child.proc.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def password(self, key: str) -> str | None:
        """The session's SSH password learnt from the CLI (for an ssh master), never logged."""
        child = self._child(key)
        return child.password if child else None

    def forget(self, key: str) -> None:
        """Drop a finished child from tunnels()."""
        child = self._child(key)
        if child is not None and not child.proc.running():
            del self._children[child.info.key]
            child.proc.close_log()
            self.tunnels_changed.emit()

    # --- internals ------------------------------------------------------------------------
    def _exe(self) -> str:
        if self._executable is None:
            self._executable = find_executable()
        return self._executable

    def _config_file(self, key: str) -> Path:
        folder = self._data_dir / "sessions"
        folder.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            # The CLI writes the SSH password into its state file in plain text.
            folder.chmod(0o700)
        return folder / f"{key}.json"

    def _start(
        self,
        key: str,
        argv: list[str],
        config: Path,
        *,
        label: str,
        preset: Preset | None,
        session_id: str | None,
    ) -> None:
        log_path = self._data_dir / "logs" / f"{key}.log"
        proc = SessionProcess(
            key,
            argv,
            env=self._env(),
            log_path=log_path,
            config_file=config,
            cwd=Path.home(),
            parser=self._parser_factory(),
            parent=self.signals,
        )
        info = TunnelInfo(
            key=key,
            session_id=session_id,
            state=TunnelState.LAUNCHING if preset is not None else TunnelState.CONNECTING,
            label=label,
            remote_folder=preset.user_folder if preset is not None else "",
            log_path=log_path,
            last_message="Starting clearml-session",
        )
        child = _Child(proc, info, preset)
        self._children[key] = child
        self._aliases[key] = key
        proc.on_output = partial(self._on_output, child)
        proc.on_events = partial(self._on_events, child)
        proc.on_finished = partial(self._on_finished, child)
        proc.start()
        self.tunnels_changed.emit()

    def _child(self, key: str) -> _Child | None:
        current = self._aliases.get(key, key)
        return self._children.get(current)

    def _find_session(self, session_id: str) -> _Child | None:
        return next((c for c in self._children.values() if c.info.session_id == session_id), None)

    def _update(self, child: _Child, **changes: Any) -> None:
        child.info = replace(child.info, **changes)
        self.tunnels_changed.emit()

    def _rekey(self, child: _Child, session_id: str) -> None:
        old = child.info.key
        if old == session_id or session_id in self._children:
            return
        del self._children[old]
        self._children[session_id] = child
        for alias, target in list(self._aliases.items()):
            if target == old:
                self._aliases[alias] = session_id
        self._aliases[session_id] = session_id
        child.info = replace(child.info, key=session_id)

    def _on_output(self, child: _Child, text: str) -> None:
        self.output.emit(child.info.key, text)

    def _on_events(self, child: _Child, events: list[SessionEvent]) -> None:
        for ev in events:
            self._handle(child, ev)
            self.event.emit(child.info.key, ev)

    def _handle(self, child: _Child, ev: SessionEvent) -> None:
        kind = ev.kind
        task_id = getattr(ev, "task_id", None)
        if task_id and child.info.session_id is None:
            self._rekey(child, task_id)
            self._update(child, session_id=task_id)
        if kind == "prompt":
            self._answer_prompt(child, ev)
        elif kind == "status":
            self._update(child, last_message=f"Status: {getattr(ev, 'status', '')}".strip())
        elif kind == "allocated":
            self._update(child, last_message="Remote machine allocated")
        elif kind == "setup_progress":
            self._update(child, last_message=str(getattr(ev, "text", "") or ev.line))
        elif kind == "machine_ready":
            self._update(child, state=TunnelState.CONNECTING, last_message="Remote machine ready")
        elif kind == "tunnel_starting":
            self._update(child, state=TunnelState.CONNECTING, last_message="Starting SSH tunnel")
        elif kind == "tunnel_retry":
            child.retries += 1
            self._update(
                child,
                state=TunnelState.RETRYING,
                last_message=f"SSH tunnel failed ({child.retries}×), retrying",
            )
            limit = max(1, self._settings().tunnel_retry_limit)
            if child.retries >= limit and not child.stopping:
                self._give_up_tunnel(child, limit)
        elif kind == "ready":
            self._ready(child, ev)
        elif kind == "reconnect":
            self._update(child, state=TunnelState.CONNECTING, last_message="Reconnecting")
        elif kind == "shutdown":
            self._update(child, last_message="Remote session shut down")
        elif kind == "error" and getattr(ev, "error", "") == "ssh_client_failed":
            # The CLI retries the tunnel by itself; the retry policy decides when to give up.
            self._update(child, last_message=str(getattr(ev, "message", "")))
        elif kind == "error":
            self._error(child, ev)

    def _answer_prompt(self, child: _Child, ev: SessionEvent) -> None:
        prompt = str(getattr(ev, "prompt", "") or getattr(ev, "name", "") or "")
        question = str(getattr(ev, "question", "") or getattr(ev, "text", ""))
        reply: str | None = None
        if child.preset is not None:
            if prompt == "restore_workspace":
                reply = "y" if child.preset.restore_workspace else "n"
            elif "previous queue" in prompt.replace("_", " ") or "previous queue" in question:
                # `--queue X` is stored as the "previous" queue before this question: confirm
                # only that one; anything else is the user's call.
                quoted = re.search(r"'(.*)'", question)
                if quoted and quoted.group(1) == child.preset.queue:
                    reply = "y"
            else:
                reply = NEW_SESSION_ANSWERS.get(prompt)
        if reply is not None:
            log.info("session %s: answering %r with %r", child.info.key, prompt, reply)
            child.proc.write(reply + "\n")
            return
        log.info("session %s: asking the user: %s", child.info.key, question)
        self._update(child, last_message=question)
        self.prompt_needed.emit(child.info.key, question)

    def _ready(self, child: _Child, ev: SessionEvent) -> None:
        child.retries = 0
        password = getattr(ev, "password", None)
        if password:
            child.password = str(password)
            register_secret(child.password)
        port = getattr(ev, "port", None) or getattr(ev, "local_ssh_port", None)
        sid = child.info.session_id
        self._update(
            child,
            state=TunnelState.READY,
            user=getattr(ev, "user", None),
            local_ssh_port=int(port) if port else None,
            jupyter_url=getattr(ev, "jupyter_url", None),
            vscode_url=getattr(ev, "vscode_url", None),
            ssh_host_alias=f"clearml-{sid[:8]}" if sid else None,
            last_message="Connected",
        )
        info = child.info
        try:
            self.on_ready(info)
        except Exception:
            log.exception("session %s: on-ready step failed", info.key)
        buttons: list[tuple[str, Callable[[], None]]] = [
            ("Open in VS Code", partial(self._open_editor_for, info.key)),
            ("Copy SSH command", partial(self._copy_ssh, info.key)),
        ]
        if info.jupyter_url:
            url = info.jupyter_url
            buttons.append(("Open JupyterLab", partial(self._open_url, url)))
        self._notify(
            "session_ready",
            "Session ready",
            f"{info.label}: ssh {info.user or 'root'}@localhost -p {info.local_ssh_port}",
            buttons,
        )
        if self._settings().open_editor_when_ready:
            self._open_editor_for(info.key)

    def ssh_command(self, key: str) -> str:
        child = self._child(key)
        if child is None or child.info.local_ssh_port is None:
            return ""
        info = child.info
        return f"ssh {info.user or 'root'}@localhost -p {info.local_ssh_port}"

    def _copy_ssh(self, key: str) -> None:
        command = self.ssh_command(key)
        if command:
            self._copy_text(command)

    def _open_editor_for(self, key: str) -> None:
        child = self._child(key)
        if child is None:
            return
        try:
            self.open_editor(child.info)
        except Exception:
            log.exception("session %s: opening the editor failed", key)

    def _give_up_tunnel(self, child: _Child, limit: int) -> None:
        key = child.info.key
        log.warning("session %s: SSH tunnel failed %d times; stopping clearml-session", key, limit)
        child.stopping = True
        child.failed_reported = True
        self._update(
            child,
            state=TunnelState.FAILED,
            last_message=f"SSH tunnel failed {limit} times in a row; stopped",
        )
        self._notify(
            "tunnel_problems",
            "SSH tunnel keeps failing",
            f"{child.info.label}: stopped after {limit} attempts (the remote session keeps "
            "running).\n" + "\n".join(list(child.proc.last_lines)[-5:]),
            [("Show log", partial(self._show_log, key))],
            critical=True,
        )
        child.proc.terminate_later()

    def _error(self, child: _Child, ev: SessionEvent) -> None:
        message = str(getattr(ev, "message", "") or ev.line or "error")
        error_kind = str(getattr(ev, "error", ""))
        reason = str(getattr(ev, "reason", "") or "")
        title = _ERROR_TITLES.get(error_kind, "Session failed")
        child.failed_reported = True
        self._update(child, state=TunnelState.FAILED, last_message=message)
        key = child.info.key
        self._notify(
            "session_failed",
            title,
            f"{child.info.label}: {message}" + (f"\n{reason}" if reason else ""),
            [("Show log", partial(self._show_log, key))],
            critical=True,
        )

    def _on_finished(self, child: _Child, code: int) -> None:
        # It holds the session password in plain text (the CLI's own state file).
        if child.proc.config_file is not None:
            child.proc.config_file.unlink(missing_ok=True)
        if child.info.state is TunnelState.FAILED or child.failed_reported:
            self._update(child, state=TunnelState.FAILED)
        elif code == 0 or child.stopping:
            self._update(child, state=TunnelState.CLOSED, last_message="Ended")
        else:
            last = "\n".join(list(child.proc.last_lines)[-5:])
            self._update(
                child, state=TunnelState.FAILED, last_message=f"clearml-session exited ({code})"
            )
            key = child.info.key
            self._notify(
                "session_failed",
                "clearml-session stopped",
                f"{child.info.label}: exited with code {code}.\n{last}",
                [("Show log", partial(self._show_log, key))],
                critical=True,
            )

    def _notify(
        self,
        kind: str,
        title: str,
        body: str,
        buttons: list[tuple[str, Callable[[], None]]],
        *,
        critical: bool = False,
    ) -> None:
        log.info("notify %s: %s", kind, title)
        if self._notifier is not None:
            self._notifier.notify(kind, title, body, buttons, critical=critical)


_ERROR_TITLES: Mapping[str, str] = {
    "auth_failed": "ClearML rejected the credentials",
    "attach_failed": "Cannot connect to the session",
    "no_such_queue": "No such queue",
    "setup_failed": "Remote setup failed",
    "missing_config": "ClearML is not configured",
    "incorrect_password": "Incorrect session password",
    "traceback": "clearml-session crashed",
}


def _copy_to_clipboard(text: str) -> None:
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.clipboard().setText(text)


def _open_url(url: str) -> None:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices

    QDesktopServices.openUrl(QUrl(url))
