"""A session's logs: its server console log, reloaded every few seconds like `tail -f` (and on
Refresh), and the `clearml-session` child's (redacted) output on this computer as it arrives.

One window per "Show log": with a tunnel or a launch, both logs are there, one tab each. Under
each log a line says that it follows and how, so that an unchanging window is not mistaken for
a frozen one; the launcher's log says that the tray answers the CLI's questions itself (the
prompts it shows are not for the user to type into).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QHideEvent, QShowEvent, QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)

MAX_BLOCKS = 20000
FOLLOW_INTERVAL_MS = 5000
Reload = Callable[[], Awaitable[str]]
SERVER_TAB = "On the machine (ClearML console log)"
LAUNCHER_TAB = "On this computer (clearml-session)"
LIVE_NOTE = (
    "Live: new lines appear as clearml-session prints them. The tray answers its questions "
    "for you; nothing needs typing here."
)


class LogView(QWidget):
    """Appends text; keeps the newest line in view unless the user has scrolled up."""

    def __init__(self, initial: str = "", reload: Reload | None = None, note: str = "") -> None:
        super().__init__()
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_BLOCKS)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.note = QLabel(note or self._following_note(None))
        self.note.setWordWrap(True)
        self._reload = reload
        self._reloading: asyncio.Future[None] | None = None
        self.reloads = 0  # completed reloads (tests wait on it)
        self._timer = QTimer(self)
        self._timer.setInterval(FOLLOW_INTERVAL_MS)
        self._timer.timeout.connect(self.refresh)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        layout.addWidget(self.note)
        self._line_open = False  # the last line has no newline yet (a prompt or progress)
        if initial:
            self.append(initial)

    @staticmethod
    def _following_note(when: float | None) -> str:
        every = FOLLOW_INTERVAL_MS // 1000
        last = f"; last read {time.strftime('%H:%M:%S', time.localtime(when))}" if when else ""
        return f"Following: read again every {every} s while open{last}."

    @property
    def reloadable(self) -> bool:
        return self._reload is not None

    def following(self) -> bool:
        bar = self.text.verticalScrollBar()
        return bar.value() >= bar.maximum() - 2

    def append(self, chunk: str) -> None:
        """Add output; `\\r` rewrites the current line like a terminal does."""
        follow = self.following()
        bar = self.text.verticalScrollBar()
        keep = bar.value()
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        chunk = chunk.replace("\r\n", "\n")
        pieces = chunk.split("\r")
        for index, piece in enumerate(pieces):
            if index > 0:
                # Carriage return: drop the current (last) line's text.
                cursor.movePosition(
                    QTextCursor.MoveOperation.StartOfBlock, QTextCursor.MoveMode.KeepAnchor
                )
                cursor.removeSelectedText()
            if piece:
                cursor.insertText(piece)
        if follow:
            bar.setValue(bar.maximum())
        else:
            bar.setValue(keep)

    def plain_text(self) -> str:
        return self.text.toPlainText()

    def refresh(self) -> None:
        """Reload the whole log (server logs have no stream to follow); one reload at a time."""
        if self._reload is None or (self._reloading and not self._reloading.done()):
            return
        self._reloading = asyncio.ensure_future(self._refresh(self._reload))

    async def _refresh(self, reload: Reload) -> None:
        try:
            text = await reload()
        except Exception as exc:  # the server went away: keep what is shown, say so
            log.warning("log reload failed: %s", exc)
            self.note.setText("Not read again: the server did not answer (see the tray's log).")
            return
        self.set_text(text)
        self.reloads += 1
        self.note.setText(self._following_note(time.time()))

    def set_text(self, text: str) -> None:
        """Replace the contents; stays at the end when it was there (tail -f), else in place."""
        if text == self.plain_text():
            return
        follow = self.following()
        bar = self.text.verticalScrollBar()
        keep = bar.value()
        self.text.setPlainText(text)
        bar.setValue(bar.maximum() if follow else keep)

    def start(self) -> None:
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())  # open at the newest line
        if self._reload is not None:
            self._timer.start()  # follows only while shown

    def stop(self) -> None:
        self._timer.stop()
        if self._reloading is not None:
            self._reloading.cancel()


class LogWindow(QDialog):
    """One log, or a session's two (server and launcher) in tabs; the first is `primary`."""

    def __init__(
        self,
        title: str,
        initial: str = "",
        parent: QWidget | None = None,
        reload: Reload | None = None,
        *,
        launcher: str | None = None,
        live: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.primary = LogView(initial, reload, LIVE_NOTE if live else "")
        self.launcher: LogView | None = None
        self.views = [self.primary]
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        if reload is not None:
            refresh = buttons.addButton("Refresh", QDialogButtonBox.ButtonRole.ActionRole)
            refresh.setToolTip("Read the server's log now (it is also read every few seconds)")
            refresh.clicked.connect(self.refresh)
            self.refresh_button = refresh
        layout = QVBoxLayout(self)
        if launcher is not None:
            self.launcher = LogView(launcher, note=LIVE_NOTE)
            self.views.append(self.launcher)
            self.tabs = QTabWidget()
            self.tabs.addTab(self.primary, SERVER_TAB)
            self.tabs.addTab(self.launcher, LAUNCHER_TAB)
            layout.addWidget(self.tabs)
        else:
            layout.addWidget(self.primary)
        layout.addWidget(buttons)
        self.resize(900, 500)

    # The primary log, as the callers of a one-log window use it.
    @property
    def text(self) -> QPlainTextEdit:
        return self.primary.text

    @property
    def reloads(self) -> int:
        return self.primary.reloads

    @property
    def _timer(self) -> QTimer:
        return self.primary._timer

    def following(self) -> bool:
        return self.primary.following()

    def append(self, chunk: str) -> None:
        self.primary.append(chunk)

    def append_launcher(self, chunk: str) -> None:
        """The clearml-session child's output, to its tab (or the only log of the window)."""
        (self.launcher or self.primary).append(chunk)

    def plain_text(self) -> str:
        return self.primary.plain_text()

    def refresh(self) -> None:
        self.primary.refresh()

    def set_text(self, text: str) -> None:
        self.primary.set_text(text)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        for view in self.views:
            view.start()

    def hideEvent(self, event: QHideEvent) -> None:
        # Close, Escape and the window manager all hide it: stop asking the server.
        for view in self.views:
            view.stop()
        super().hideEvent(event)
