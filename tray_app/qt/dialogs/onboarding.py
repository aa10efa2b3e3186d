"""First-run window: how to get a ClearML configuration, or try the demo server."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tray_app.core.server.errors import ONBOARDING_TEXT, ConfigError, ConfigNotFound

STEPS_HTML = """
<p>The tray needs the address and credentials of a ClearML server, in a <code>clearml.conf</code>
file like the one <code>clearml-session</code> uses. Pick one way:</p>
<ol>
<li><b>Use the hosted server</b>: sign up at <a href="https://app.clear.ml">app.clear.ml</a>,
create credentials under <i>Settings → Workspace</i>, and paste them with
<b>Enter ClearML keys…</b> (or run <code>clearml-init</code>).</li>
<li><b>Run your own server</b> with the <code>docker-compose.yaml</code> that ships with
ClearML Session Tray: <code>docker compose up -d</code>, open
<a href="http://localhost:8080">http://localhost:8080</a>, create credentials there the same
way and paste them.</li>
<li><b>Point the tray at another file</b> with “Choose config file…”.</li>
<li><b>Just look around</b>: the demo server runs on this computer with sample sessions.</li>
</ol>
<p>A <code>clearml.conf</code> written meanwhile (by <code>clearml-init</code>, an editor) is
picked up within seconds; this window then closes by itself.</p>
"""


class OnboardingDialog(QDialog):
    config_file_chosen = Signal(str)
    demo_requested = Signal()
    retry_requested = Signal()
    keys_requested = Signal()

    def __init__(self, error: ConfigError | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set up ClearML")
        self.problem = QLabel(self._problem_text(error))
        self.problem.setWordWrap(True)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        steps = QLabel(STEPS_HTML)
        steps.setWordWrap(True)
        steps.setOpenExternalLinks(True)
        steps.setToolTip(ONBOARDING_TEXT)
        self.keys = QPushButton("Enter ClearML keys…")
        self.keys.clicked.connect(self.keys_requested.emit)
        self.choose = QPushButton("Choose config file…")
        self.choose.clicked.connect(self._choose)
        self.demo = QPushButton("Try the demo server")
        self.demo.clicked.connect(self._demo)
        self.retry = QPushButton("Retry")
        self.retry.clicked.connect(self._retry)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for button in (self.keys, self.choose, self.demo, self.retry):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.problem)
        layout.addWidget(steps)
        layout.addStretch(1)
        layout.addLayout(buttons)
        # As tall as its text at this width: a fixed size left half of it empty.
        self.setMinimumWidth(660)
        self.resize(660, layout.heightForWidth(660) if layout.hasHeightForWidth() else 0)
        self.adjustSize()
        # Not resizable: window managers then draw no resize handle along its bottom edge.
        self.setFixedSize(self.size())

    @staticmethod
    def _problem_text(error: ConfigError | None) -> str:
        if error is None:
            return "ClearML is configured."
        if isinstance(error, ConfigNotFound):
            return str(error)
        return f"The ClearML configuration cannot be used: {error}"

    def set_error(self, error: ConfigError | None) -> None:
        self.problem.setText(self._problem_text(error))

    def choose_file(self, path: str) -> None:
        if path:
            self.config_file_chosen.emit(path)
            self.accept()

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "ClearML configuration", str(Path.home()), "ClearML config (*.conf);;*"
        )
        self.choose_file(path)

    def _demo(self) -> None:
        self.demo_requested.emit()
        self.accept()

    def _retry(self) -> None:
        self.retry_requested.emit()
