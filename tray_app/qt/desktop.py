"""`core.ports.Desktop` and `core.ports.Runner` with Qt: clipboard, URLs, processes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from PySide6.QtCore import QProcess, QProcessEnvironment, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

from tray_app.core.ports import SECRET_CLIPBOARD_S


class QtDesktop:
    def copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)

    def copy_secret(self, text: str, clear_after_s: float = SECRET_CLIPBOARD_S) -> None:
        self.copy(text)

        def clear_if_ours() -> None:
            clipboard = QGuiApplication.clipboard()
            # Something copied since (by the user, by another program) is theirs: left alone.
            if clipboard.text() == text:
                clipboard.clear()

        QTimer.singleShot(int(clear_after_s * 1000), clear_if_ours)

    def open_url(self, url: str) -> bool:
        return bool(QDesktopServices.openUrl(QUrl(url)))

    def start_detached(self, argv: Sequence[str]) -> bool:
        ok, _pid = QProcess.startDetached(argv[0], list(argv[1:]))
        return bool(ok)


class QtRunner:
    """Short commands as QProcesses on the event loop (never a blocking wait)."""

    async def run(
        self, argv: Sequence[str], env: Mapping[str, str], timeout_s: float = 60
    ) -> tuple[int, str]:
        process = QProcess()
        qenv = QProcessEnvironment()
        for name, value in env.items():
            qenv.insert(name, value)
        process.setProcessEnvironment(qenv)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.setStandardInputFile(QProcess.nullDevice())  # never a terminal prompt
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def finish(code: int) -> None:
            if not done.done():
                done.set_result(code)

        process.finished.connect(lambda code, _status: finish(int(code)))
        process.errorOccurred.connect(
            lambda _error: (
                finish(-1) if process.state() == QProcess.ProcessState.NotRunning else None
            )
        )
        process.start(argv[0], list(argv[1:]))
        try:
            async with asyncio.timeout(timeout_s):
                code = await done
        except TimeoutError:
            process.kill()
            process.waitForFinished(1000)
            return -1, "timed out"
        return code, bytes(process.readAll().data()).decode("utf-8", "replace")
