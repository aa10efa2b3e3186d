"""The ClearML keys dialog: paste what the web UI gives, or type the keys and the server.

Non-modal. "Check and save" hands the keys to `submit` (core/server/credentials.py
`CredentialsFlow.submit`), which logs in with them and only then writes clearml.conf; the dialog
stays open with the reason when the server says no.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tray_app.core.server.credentials import (
    Credentials,
    CredentialsProblem,
    Saved,
    from_fields,
    parse_pasted,
)

log = logging.getLogger(__name__)

PLACEHOLDER = """api {
  web_server: https://app.clear.ml/
  api_server: https://api.clear.ml
  files_server: https://files.clear.ml
  credentials {
    "access_key" = "…"
    "secret_key" = "…"
  }
}"""
ERROR_STYLE = "color: #c62828"


class CredentialsDialog(QDialog):
    def __init__(
        self,
        submit: Callable[[Credentials], Awaitable[Saved]],
        *,
        server: str = "",
        web: str = "",
        problem: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("ClearML keys")
        self._submit = submit
        self._task: asyncio.Future[None] | None = None
        self._pasted_creds: Credentials | None = None
        self.saved: Saved | None = None
        where = (
            f'<a href="{html.escape(web.rstrip("/"))}/settings/workspace-configuration">'
            "Settings → Workspace</a>"
            if web
            else "Settings → Workspace"
        )
        intro = QLabel(
            (f"<p>{html.escape(problem)}</p>" if problem else "")
            + f"<p>In the ClearML web UI, open {where}, press <i>Create new credentials</i>, "
            "then <i>Copy to clipboard</i>, and paste the whole block here:</p>"
        )
        intro.setWordWrap(True)
        intro.setOpenExternalLinks(True)
        intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.paste = QPlainTextEdit()
        self.paste.setPlaceholderText(PLACEHOLDER)
        self.paste.setTabChangesFocus(True)
        self.paste.textChanged.connect(self._pasted)
        self.access_key = QLineEdit()
        self.secret_key = QLineEdit()
        self.secret_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.server = QLineEdit(server)
        self.server.setPlaceholderText("https://app.clear.ml (the web or the API address)")
        form = QFormLayout()
        form.addRow("Access key", self.access_key)
        form.addRow("Secret key", self.secret_key)
        form.addRow("Server", self.server)
        self.status = QLabel("The keys are checked with the server before anything is saved.")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox()
        self.save_button: QPushButton = buttons.addButton(
            "Check and save", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.setDefault(True)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.check_and_save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.paste, 1)
        layout.addWidget(QLabel("Or type them:"))
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.resize(560, 480)
        # Not resizable: window managers then draw no resize handle along its bottom edge.
        self.setFixedSize(self.size())

    def _pasted(self) -> None:
        text = self.paste.toPlainText()
        if not text.strip():
            return
        try:
            creds = parse_pasted(text, self.server.text())
        except CredentialsProblem as exc:
            self._say(str(exc), error=True)
            return
        self.access_key.setText(creds.access_key)
        self.secret_key.setText(creds.secret_key)
        self.server.setText(creds.web_server)
        self._pasted_creds = creds
        self._say(f"Read: access key {creds.access_key} for {creds.api_server}.")

    def credentials(self) -> Credentials:
        """What is entered; raises CredentialsProblem in words."""
        pasted = self._pasted_creds
        if (
            pasted is not None
            and pasted.access_key == self.access_key.text().strip()
            and pasted.secret_key == self.secret_key.text().strip()
            and pasted.web_server == self.server.text().strip()
        ):
            return pasted  # the block's own three addresses, not ones derived from one
        return from_fields(self.access_key.text(), self.secret_key.text(), self.server.text())

    def check_and_save(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            creds = self.credentials()
        except CredentialsProblem as exc:
            self._say(str(exc), error=True)
            return
        self._say(f"Checking the keys with {creds.api_server}…")
        self.save_button.setEnabled(False)
        self._task = asyncio.ensure_future(self._save(creds))

    async def _save(self, creds: Credentials) -> None:
        try:
            self.saved = await self._submit(creds)
        except CredentialsProblem as exc:
            self._say(str(exc), error=True)
            return
        except Exception:  # a bug of ours: a sentence here, the traceback in the log
            log.exception("saving the ClearML keys failed")
            self._say("The keys could not be saved (an unexpected problem); see the log.", True)
            return
        finally:
            self.save_button.setEnabled(True)
        self.accept()

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")
