"""Follow a `clearml-session` child's (redacted) output as it arrives, or a session's server
console log, reloaded every few seconds like `tail -f` (and on Refresh)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QHideEvent, QShowEvent, QTextCursor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPlainTextEdit, QVBoxLayout, QWidget

log = logging.getLogger(__name__)

MAX_BLOCKS = 20000
FOLLOW_INTERVAL_MS = 5000
Reload = Callable[[], Awaitable[str]]


class LogWindow(QDialog):
    """Appends text; keeps the newest line in view unless the user has scrolled up."""

    def __init__(
        self,
        title: str,
        initial: str = "",
        parent: QWidget | None = None,
        reload: Reload | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_BLOCKS)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        self._reload = reload
        self._reloading: asyncio.Future[None] | None = None
        self.reloads = 0  # completed reloads (tests wait on it)
        self._timer = QTimer(self)
        self._timer.setInterval(FOLLOW_INTERVAL_MS)
        self._timer.timeout.connect(self.refresh)
        if reload is not None:
            refresh = buttons.addButton("Refresh", QDialogButtonBox.ButtonRole.ActionRole)
            refresh.setToolTip("Reload the log now (it also reloads every few seconds)")
            refresh.clicked.connect(self.refresh)
            self.refresh_button = refresh
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(900, 500)
        self._line_open = False  # the last line has no newline yet (a prompt or progress)
        if initial:
            self.append(initial)

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
        except Exception as exc:  # the server went away: keep what is shown, say it in the log
            log.warning("log reload failed: %s", exc)
            return
        self.set_text(text)
        self.reloads += 1

    def set_text(self, text: str) -> None:
        """Replace the contents; stays at the end when it was there (tail -f), else in place."""
        if text == self.plain_text():
            return
        follow = self.following()
        bar = self.text.verticalScrollBar()
        keep = bar.value()
        self.text.setPlainText(text)
        bar.setValue(bar.maximum() if follow else keep)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())  # open at the newest line
        if self._reload is not None:
            self._timer.start()  # follows only while shown

    def hideEvent(self, event: QHideEvent) -> None:
        # Close, Escape and the window manager all hide it: stop asking the server.
        self._timer.stop()
        if self._reloading is not None:
            self._reloading.cancel()
        super().hideEvent(event)
