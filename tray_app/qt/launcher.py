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

from tray_app.core.atomic import atomic_write_text
from tray_app.core.ports import Notify
from tray_app.core.redact import StreamRedactor, register_secret
from tray_app.core.settings import presets as presets_mod
from tray_app.core.settings.presets import Preset
from tray_app.core.settings.settings import Settings
from tray_app.core.tunnels.children import ChildRegistry, guarded_argv
from tray_app.core.tunnels.model import TunnelInfo, TunnelState
from tray_app.core.tunnels.parser import SessionEvent
from tray_app.core.tunnels.reducer import (
    AskUser,
    Effect,
    LaunchPolicy,
    LaunchProblem,
    LoginAhead,
    Notice,
    OpenEditor,
    Terminate,
    TunnelModel,
    TunnelUp,
    WriteStdin,
    finished,
    progress_notice,
    react,
    ready_notice,
)
from tray_app.core.tunnels.ssh_master import LOGIN_MARKER_ENV, askpass_note
from tray_app.core.wording import session_title, short_id

log = logging.getLogger(__name__)

APP_DIR_NAME = "clearml-tray"
TERMINATE_GRACE_MS = 3000
SHUTDOWN_GRACE_MS = 20000
LAST_LINES = 12
QUIET_MS = 1500
LOG_LIMIT_CHARS = 8_000_000  # per clearml-session log file


TunnelHook = Callable[[TunnelInfo], None]
# (the tunnel, the marker its CLI's ssh waits on while the tray fetches the session password)
LoginHook = Callable[[TunnelInfo, Path], None]


class ParserLike(Protocol):
    def feed(self, chunk: str) -> list[SessionEvent]: ...

    def close(self, exit_code: int | None = None) -> list[SessionEvent]: ...

    def pending_question(self) -> SessionEvent | None: ...


def default_parser() -> ParserLike:
    import importlib

    module = importlib.import_module("tray_app.core.tunnels.parser")
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
        self.started_pid = 0
        self._log_bytes = 0
        self._log_full = False
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
        self.started_pid = self.pid  # processId() reads 0 once the child has ended
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
        if not text or self._log.closed:
            return
        if self._log_bytes + len(text) > LOG_LIMIT_CHARS:
            # A child that floods its output must not fill the disk; the last lines stay in
            # memory (notifications) and the child keeps being read and parsed.
            if not self._log_full:
                self._log_full = True
                self._log.write(
                    f"\n[the log stops here: over {LOG_LIMIT_CHARS // 1_000_000} MB of output]\n"
                )
                self._log.flush()
                log.warning("session %s: log limit reached; further output not written", self.key)
            return
        self._log_bytes += len(text)
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


def _default_hook(name: str) -> TunnelHook:
    def hook(info: TunnelInfo) -> None:
        log.info("%s hook for %s (nothing wired in this build)", name, info.key)

    return hook


class _Child:
    """A SessionProcess plus its tunnel's state (`core.launch_events` decides the changes)."""

    def __init__(self, proc: SessionProcess, model: TunnelModel, policy: LaunchPolicy) -> None:
        self.proc = proc
        self.model = model
        self.policy = policy
        self.password: str | None = None
        self.login_marker: Path | None = None  # its ssh waits while this exists
        self.login_note: Path | None = None  # the note its ssh reads the password's name from

    @property
    def info(self) -> TunnelInfo:
        return self.model.info


class LauncherSignals(QObject):
    tunnels_changed = Signal()
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
        notifier: Notify | None = None,
        *,
        env: Callable[[], Mapping[str, str]] | None = None,
        executable: str | None = None,
        data_dir: Path | None = None,
        on_ready: TunnelHook | None = None,
        open_editor: TunnelHook | None = None,
        open_url: Callable[[str], None] | None = None,
        show_log: Callable[[str], None] | None = None,
        parser_factory: Callable[[], ParserLike] = default_parser,
        login_markers: Callable[[], Path | None] = lambda: None,
        parent: QObject | None = None,
    ) -> None:
        self.signals = LauncherSignals(parent)
        self.tunnels_changed = self.signals.tunnels_changed
        self.output = self.signals.output
        self.prompt_needed = self.signals.prompt_needed
        self._parser_factory = parser_factory
        self._settings = settings
        self._notifier = notifier
        self._env = env or (lambda: dict(os.environ))
        self._executable = executable
        self._data_dir = data_dir or Path(platformdirs.user_data_dir(APP_DIR_NAME))
        self.on_ready: TunnelHook = on_ready or _default_hook("on-ready")
        self.open_editor: TunnelHook = open_editor or _default_hook("open-editor")
        self.copy_ssh: TunnelHook = _default_hook("copy-ssh")
        self.login_ahead: LoginHook = lambda info, marker: marker.unlink(missing_ok=True)
        self._login_markers = login_markers  # where a new session's marker goes (None: none)
        self._open_url = open_url or _open_url
        self._show_log = show_log or (lambda key: log.info("show log %s", key))
        self._children: dict[str, _Child] = {}
        self._aliases: dict[str, str] = {}  # launch key → current key (session id once known)
        self._counter = itertools.count(1)
        self.registry = ChildRegistry(self._data_dir / "children.json")

    # --- Launcher protocol ----------------------------------------------------------------
    def create(self, preset: Preset, password: str | None = None) -> str:
        """Start a new session; `password` is the fixed one read from the keyring by the caller.

        Raises LaunchProblem with a sentence for the user when it cannot start.
        """
        key = f"launch-{next(self._counter)}"
        if preset.password_policy == "fixed" and not password:
            raise LaunchProblem(
                f"The preset “{preset.name}” uses a fixed password, but none is stored in the "
                "keyring for it. Set it in the preset's Advanced section and save the preset."
            )
        if password:
            register_secret(password)
        try:
            exe = self._exe()
        except FileNotFoundError as exc:
            raise LaunchProblem(
                "clearml-session is not installed next to the tray nor on PATH "
                "(pip install clearml-session)."
            ) from exc
        config = self._config_file(key)
        try:
            argv = presets_mod.build_argv(
                preset, executable=exe, config_file=str(config), password=password
            )
        except presets_mod.PresetError as exc:
            raise LaunchProblem(f"The preset “{preset.name}” is not valid: {exc}") from exc
        if password:
            try:  # the CLI reads it from here: never argv (world-readable in /proc)
                atomic_write_text(config, presets_mod.state_file_text(password), mode=0o600)
            except OSError as exc:
                raise LaunchProblem(
                    f"Could not prepare the session's state file: {exc.strerror or exc}"
                ) from exc
        label = preset.session_name or preset.name
        policy = self._policy(
            creating=True, restore_workspace=preset.restore_workspace, queue=preset.queue
        )
        env, marker = self._login_marker(key)
        self._start(
            key,
            argv,
            config,
            label=label,
            folder=preset.user_folder,
            policy=policy,
            sid=None,
            env=env,
        )
        self._children[key].login_marker = marker
        self._children[key].login_note = askpass_note(marker) if marker else None
        return key

    def _login_marker(self, key: str) -> tuple[dict[str, str], Path | None]:
        """The CLI's first ssh waits on this file until the tray has handed it the new
        session's password (LoginAhead); no file, no wait."""
        folder = self._login_markers()
        if folder is None:
            return {}, None
        marker = folder / f"login-{key}.pending"
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            askpass_note(marker).unlink(missing_ok=True)  # an earlier run's, never used
            marker.touch()
        except OSError as exc:
            log.info("no password ahead for %s: %s", key, exc.strerror)
            return {}, None
        return {LOGIN_MARKER_ENV: str(marker)}, marker

    def attach(
        self,
        session_id: str,
        label: str = "",
        *,
        prewarm: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """`clearml-session --attach <id>`; `prewarm`: ahead of a Connect nobody clicked yet,
        silent until `promote` (or ended quietly with `retire`); `env`: added to the child's."""
        existing = self._find_session(session_id)
        if existing is not None and existing.proc.running():
            if not prewarm:
                self.promote(existing.info.key)
            return existing.info.key
        key = f"attach-{next(self._counter)}"
        config = self._config_file(key)
        argv = presets_mod.build_attach_argv(
            session_id, executable=self._exe(), config_file=str(config)
        )
        self._start(
            key,
            argv,
            config,
            # Names repeat ("Interactive Session"): notices name it with its short id.
            label=label if short_id(session_id) in label else session_title(label, session_id),
            folder="",
            policy=self._policy(creating=False, quiet=prewarm),
            sid=session_id,
            env=env,
        )
        return key

    def promote(self, key: str) -> TunnelInfo | None:
        """The user asked for this prewarmed tunnel: from now on it is like any other. Ready
        already: its host is prepared and "Session ready" posted (the caller opens the editor);
        still coming up: the progress notice, and the editor opens when it is ready."""
        child = self._child(key)
        if child is None or not child.policy.quiet:
            return child.info if child else None
        child.policy = replace(child.policy, quiet=False)
        self._set(child, _info(child.model, prewarmed=False))
        log.info("session %s: prewarmed tunnel taken into use (%s)", key, child.info.state.value)
        if child.info.state is TunnelState.READY:
            self._carry_out(child, [TunnelUp(child.password or ""), ready_notice(child.model)])
        elif child.info.state not in (TunnelState.CLOSED, TunnelState.FAILED):
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
        if child is not None and child.proc.running():
            child.model = replace(child.model, retries=0)
            child.proc.write("r\n")
            self._set(child, _info(child.model, state=TunnelState.CONNECTING, last_message=reason))

    def disconnect(self, key: str) -> None:
        child = self._child(key)
        if child is None or not child.proc.running():
            return
        child.model = replace(child.model, stopping=True)
        child.proc.terminate_later()

    def shutdown(self, key: str) -> None:
        child = self._child(key)
        if child is not None:
            child.proc.write("Shutdown\n")
            self._set(child, _info(child.model, last_message="Shutting down the remote session"))

    def tunnels(self) -> Mapping[str, TunnelInfo]:
        return {child.info.key: child.info for child in self._children.values()}

    def stop_all(self, shutdown_remote: bool) -> None:
        children = [c for c in self._children.values() if c.proc.running()]
        # The CLI reads stdin only while its tunnel is up: only READY children can pass
        # "Shutdown" on; the others' remote sessions keep running (the caller may stop them
        # through the API).
        asked = [c for c in children if shutdown_remote and c.info.state is TunnelState.READY]
        for child in children:
            child.model = replace(child.model, stopping=True)
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
    def _policy(self, **fields: Any) -> LaunchPolicy:
        settings = self._settings()
        return LaunchPolicy(
            retry_limit=settings.tunnel_retry_limit,
            open_editor_when_ready=settings.open_editor_when_ready,
            **fields,
        )

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
        folder: str,
        policy: LaunchPolicy,
        sid: str | None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        # Keys restart at 1 with every run; the log names carry the start time so that an
        # earlier run's logs are kept.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        log_path = self._data_dir / "logs" / f"{stamp}-{key}.log"
        proc = SessionProcess(
            key,
            guarded_argv(argv),
            env={**self._env(), **(env or {})},
            log_path=log_path,
            config_file=config,
            cwd=Path.home(),
            parser=self._parser_factory(),
            parent=self.signals,
        )
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
        child = _Child(proc, TunnelModel(info), policy)
        self._children[key] = child
        self._aliases[key] = key
        proc.on_output = partial(self._on_output, child)
        proc.on_events = partial(self._on_events, child)
        proc.on_finished = partial(self._on_finished, child)
        proc.start()
        self.registry.add(proc.started_pid)
        self.tunnels_changed.emit()
        if not policy.quiet:
            self._notice(child, progress_notice(child.model, creating=policy.creating))

    def _child(self, key: str) -> _Child | None:
        current = self._aliases.get(key, key)
        return self._children.get(current)

    def _find_session(self, session_id: str) -> _Child | None:
        return next((c for c in self._children.values() if c.info.session_id == session_id), None)

    def _set(self, child: _Child, model: TunnelModel) -> None:
        old_sid = child.info.session_id
        child.model = model
        sid = model.info.session_id
        if sid and sid != old_sid:
            self._rekey(child, sid)
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
        child.model = _info(child.model, key=session_id)

    def _on_output(self, child: _Child, text: str) -> None:
        self.output.emit(child.info.key, text)

    def _on_events(self, child: _Child, events: list[SessionEvent]) -> None:
        for ev in events:
            model, effects = react(child.model, ev, child.policy)
            if model != child.model:
                self._set(child, model)
            self._carry_out(child, effects)

    def _carry_out(self, child: _Child, effects: list[Effect]) -> None:
        key = child.info.key
        for effect in effects:
            if isinstance(effect, WriteStdin):
                log.info("session %s: answering %r", key, effect.text.strip())
                child.proc.write(effect.text)
            elif isinstance(effect, AskUser):
                log.info("session %s: asking the user: %s", key, effect.question)
                self._set(child, _info(child.model, last_message=effect.question))
                self.prompt_needed.emit(key, effect.question)
            elif isinstance(effect, TunnelUp):
                if effect.password:
                    child.password = effect.password
                    register_secret(effect.password)
                if child.policy.quiet:
                    continue  # no Host block nor login until someone connects (promote)
                try:
                    self.on_ready(child.info)
                except Exception:
                    log.exception("session %s: on-ready step failed", key)
            elif isinstance(effect, OpenEditor):
                self._open_editor_for(key)
            elif isinstance(effect, LoginAhead):
                marker, child.login_marker = child.login_marker, None
                if marker is not None:
                    try:
                        self.login_ahead(child.info, marker)
                    except Exception:
                        log.exception("session %s: password ahead failed", key)
                        marker.unlink(missing_ok=True)
            elif isinstance(effect, Notice):
                self._notice(child, effect)
            elif isinstance(effect, Terminate):
                log.warning("session %s: giving up; stopping clearml-session", key)
                child.proc.terminate_later()

    def _notice(self, child: _Child, notice: Notice) -> None:
        key = child.info.key
        actions: dict[str, Callable[[], None]] = {
            "open_editor": partial(self._open_editor_for, key),
            "copy_ssh": partial(self._copy_ssh_for, key),
            "show_log": partial(self._show_log, key),
            "disconnect": partial(self.disconnect, key),
        }
        if child.info.jupyter_url:
            actions["open_jupyter"] = partial(self._open_url, child.info.jupyter_url)
        buttons = [(label, actions[a]) for label, a in notice.buttons if a in actions]
        body = notice.body
        if notice.last_lines and child.proc.last_lines:
            body += "\n" + "\n".join(list(child.proc.last_lines)[-5:])
        log.info("notify %s: %s", notice.kind, notice.title)
        tag = f"tunnel-{id(child)}"  # one notification per child: each replaces the last
        if self._notifier is not None:
            self._notifier.notify(
                notice.kind, notice.title, body, buttons, critical=notice.critical, tag=tag
            )

    def _copy_ssh_for(self, key: str) -> None:
        child = self._child(key)
        if child is not None:
            self.copy_ssh(child.info)

    def _open_editor_for(self, key: str) -> None:
        child = self._child(key)
        if child is None:
            return
        try:
            self.open_editor(child.info)
        except Exception:
            log.exception("session %s: opening the editor failed", key)

    def _on_finished(self, child: _Child, code: int) -> None:
        # It holds the session password in plain text (the CLI's own state file).
        if child.proc.config_file is not None:
            child.proc.config_file.unlink(missing_ok=True)
        for path in (child.login_marker, child.login_note):
            if path is not None:
                path.unlink(missing_ok=True)
        self.registry.discard(child.proc.started_pid)
        model, effects = finished(child.model, code, child.policy)
        self._set(child, model)
        self._carry_out(child, effects)
        if child.policy.quiet:
            # Nobody used it: no menu row, no log file, nothing left of it.
            self._children.pop(child.info.key, None)
            self._aliases = {k: v for k, v in self._aliases.items() if v != child.info.key}
            child.proc.close_log()
            child.proc.log_path.unlink(missing_ok=True)
            self.tunnels_changed.emit()


def _info(model: TunnelModel, **changes: Any) -> TunnelModel:
    return replace(model, info=replace(model.info, **changes))


def _open_url(url: str) -> None:
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QDesktopServices

    QDesktopServices.openUrl(QUrl(url))
