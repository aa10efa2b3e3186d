"""A `ChildProcess` (core.tunnels.ports) on a QProcess: the only Qt part of a tunnel.

The child runs in a session and process group of its own (a terminal's Ctrl-C or hang-up does
not reach it; our signals reach its whole tree), with stdout and stderr merged. Everything it
prints, its end and a half-second tick go to the listener as plain method calls: PySide6 6.12.0
lost a reference to True on every `Signal.emit` and to None on every `QTimer.start`/`stop`, and
a chatty child would eventually abort the interpreter, so nothing here emits per line and the
tick runs on one repeating timer.
"""

from __future__ import annotations

import logging
import os
import signal

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer

from tray_app.core.tunnels.children import descendants, signal_group, signal_pids
from tray_app.core.tunnels.ports import TERMINATE_GRACE_MS, ChildListener, ChildSpec

log = logging.getLogger(__name__)

TICK_MS = 500


class QtChildProcess(QObject):
    def __init__(self, spec: ChildSpec, listener: ChildListener, parent: QObject | None) -> None:
        super().__init__(parent)
        self.key = spec.key
        self._listener = listener
        self._started_pid = 0
        self._descendants: set[int] = set()
        self.process = QProcess(self)
        self.process.setProgram(spec.argv[0])
        self.process.setArguments(list(spec.argv[1:]))
        qenv = QProcessEnvironment()
        for name, value in spec.env.items():
            qenv.insert(name, value)
        self.process.setProcessEnvironment(qenv)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        if spec.cwd is not None:
            self.process.setWorkingDirectory(str(spec.cwd))
        if os.name == "posix":
            params = QProcess.UnixProcessParameters()
            params.flags = QProcess.UnixProcessFlag.CreateNewSession
            self.process.setUnixProcessParameters(params)
        # Escalation after terminate_later(); owned here so it dies with the process object.
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.kill)
        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(TICK_MS)
        self._tick_timer.timeout.connect(self._tick)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)

    @property
    def pid(self) -> int:
        return self._started_pid

    def start(self) -> None:
        self.process.start()
        self._started_pid = int(self.process.processId())  # reads 0 once the child has ended
        self._tick_timer.start()

    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def write(self, text: str) -> None:
        if self.running():
            self.process.write(text.encode())

    def terminate(self) -> None:
        """SIGTERM to the child's group and every descendant (the pty'd ssh included)."""
        if not self.running():
            return
        pid = int(self.process.processId())
        self._descendants.update(descendants(pid))
        if os.name == "posix":
            signal_group(pid, signal.SIGTERM)
            signal_pids(sorted(self._descendants), signal.SIGTERM)
        else:
            self.process.terminate()

    def terminate_later(self, grace_ms: int = TERMINATE_GRACE_MS) -> None:
        if self.running():
            self.terminate()
            self._kill_timer.start(grace_ms)

    def kill(self) -> None:
        if self.running():
            pid = int(self.process.processId())
            self._descendants.update(descendants(pid))
            if os.name == "posix":
                signal_group(pid, signal.SIGKILL)
            self.process.kill()
        if os.name == "posix":
            signal_pids(sorted(self._descendants), signal.SIGKILL)

    def stop(self, grace_ms: int = TERMINATE_GRACE_MS) -> None:
        self.terminate()
        if self.running() and not self.process.waitForFinished(grace_ms):
            log.warning("session %s: child did not end on SIGTERM; killing it", self.key)
        self.kill()
        if self.running():
            self.process.waitForFinished(grace_ms)

    def wait_finished(self, timeout_ms: int) -> bool:
        return not self.running() or self.process.waitForFinished(timeout_ms)

    def release(self) -> None:
        self._kill_timer.stop()
        self._tick_timer.stop()
        self.deleteLater()

    def _read(self) -> None:
        self._listener.received(bytes(self.process.readAllStandardOutput().data()))

    def _tick(self) -> None:
        if self.running():
            self._listener.tick()

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._tick_timer.stop()
            message = f"could not start {self.process.program()}: {self.process.errorString()}"
            self._listener.finished(-1, message)

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._kill_timer.stop()
        self._tick_timer.stop()
        self._read()  # what is still buffered
        exit_code = code if status == QProcess.ExitStatus.NormalExit else -1
        # ssh may still hold the tunnel after the CLI itself died.
        if os.name == "posix":
            signal_pids(sorted(self._descendants), signal.SIGTERM)
        self._listener.finished(exit_code)


class QtChildren:
    """Starts `QtChildProcess`es under one parent object, so that they go with it."""

    def __init__(self, parent: QObject | None = None) -> None:
        self._parent = QObject(parent)

    def __call__(self, spec: ChildSpec, listener: ChildListener) -> QtChildProcess:
        return QtChildProcess(spec, listener, self._parent)

    def close(self) -> None:
        """Free every child object now, while the application still exists."""
        import shiboken6

        if shiboken6.isValid(self._parent):
            shiboken6.delete(self._parent)
