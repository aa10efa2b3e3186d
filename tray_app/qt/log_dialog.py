"""A read-only window for a session's server console log (newest first)."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPlainTextEdit, QVBoxLayout

from tray_app.core.models import LogLine


def format_lines(lines: list[LogLine]) -> str:
    out = []
    for line in lines:
        stamp = line.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S") if line.timestamp else ""
        out.append(f"{stamp}  {line.msg.rstrip()}")
    return "\n".join(out) if out else "(the log is empty)"


class LogDialog(QDialog):
    def __init__(self, title: str, lines: list[LogLine]) -> None:
        super().__init__()
        self.setWindowTitle(title)
        self.text = QPlainTextEdit(format_lines(lines))
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(900, 500)
