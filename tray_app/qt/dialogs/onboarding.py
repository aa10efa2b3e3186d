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
<li><b>Run your own server</b> with the <code>docker-compose.yaml</code> that ships with
ClearML Session Tray: <code>docker compose up -d</code>, open
<a href="http://localhost:8080">http://localhost:8080</a>, create credentials under
<i>Settings → Workspace</i>, then run <code>clearml-init</code> and paste them.</li>
<li><b>Use the hosted server</b>: sign up at <a href="https://app.clear.ml">app.clear.ml</a>,
create credentials, then run <code>clearml-init</code>.</li>
<li><b>Point the tray at another file</b> with “Choose config file…”.</li>
<li><b>Just look around</b>: the demo server runs on this computer with sample sessions.</li>
</ol>
"""


class OnboardingDialog(QDialog):
    config_file_chosen = Signal(str)
    demo_requested = Signal()
    retry_requested = Signal()

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
        self.choose = QPushButton("Choose config file…")
        self.choose.clicked.connect(self._choose)
        self.demo = QPushButton("Try the demo server")
        self.demo.clicked.connect(self._demo)
        self.retry = QPushButton("Retry")
        self.retry.clicked.connect(self._retry)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for button in (self.choose, self.demo, self.retry):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.problem)
        layout.addWidget(steps)
        # Spare height goes below the texts: in the labels, it showed as gaps around their
        # (vertically centred) text.
        layout.addStretch(1)
        layout.addLayout(buttons)
        self.resize(620, 380)

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
