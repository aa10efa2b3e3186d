"""Follow a `clearml-session` child's (redacted) output as it arrives."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPlainTextEdit, QVBoxLayout, QWidget

MAX_BLOCKS = 20000


class LogWindow(QDialog):
    """Appends text; keeps the newest line in view unless the user has scrolled up."""

    def __init__(self, title: str, initial: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_BLOCKS)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
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
