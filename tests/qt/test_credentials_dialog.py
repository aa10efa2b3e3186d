"""The ClearML keys dialog: paste what the web UI gives, checked before anything is saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.qt_wait import until

from tray_app.core.server.credentials import Credentials, CredentialsProblem, Saved
from tray_app.qt.windows import Windows

BLOCK = """api {
  web_server: http://127.0.0.1:8080/
  api_server: http://127.0.0.1:8008
  files_server: http://127.0.0.1:8081
  credentials {
    "access_key" = "AKEY1234"
    "secret_key" = "SKEY5678"
  }
}"""


async def test_paste_check_and_save_and_a_refusal_keeps_the_dialog_open(qapp: Any) -> None:
    tried: list[Credentials] = []
    answers: list[Exception | Saved] = [
        CredentialsProblem("http://127.0.0.1:8008 refused these keys"),
        Saved(Path("/home/u/clearml.conf"), None, "Demo User"),
    ]

    async def submit(creds: Credentials) -> Saved:
        tried.append(creds)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    saved: list[Saved] = []
    windows = Windows()
    windows.credentials(
        submit,
        server="",
        web="http://127.0.0.1:8080",
        problem="The server refused the keys.",
        saved=saved.append,
    )
    dialog = windows.credentials_dialog
    assert dialog.isVisible() and dialog.windowTitle() == "ClearML keys"
    dialog.paste.setPlainText(BLOCK)
    assert (dialog.access_key.text(), dialog.secret_key.text()) == ("AKEY1234", "SKEY5678")
    assert dialog.server.text() == "http://127.0.0.1:8080"
    assert "Read: access key AKEY1234" in dialog.status.text()
    dialog.save_button.click()
    await until(lambda: "refused" in dialog.status.text(), "the refusal")
    assert dialog.isVisible() and dialog.save_button.isEnabled() and saved == []
    assert tried[0].api_server == "http://127.0.0.1:8008"  # the block's own addresses
    dialog.save_button.click()
    await until(lambda: not dialog.isVisible(), "the dialog to close once saved")
    assert saved and saved[0].user == "Demo User"


async def test_typed_keys_need_both_and_a_server(qapp: Any) -> None:
    async def submit(creds: Credentials) -> Saved:
        raise AssertionError("nothing may be submitted")

    windows = Windows()
    windows.credentials(submit, server="", web="", problem="", saved=lambda s: None)
    dialog = windows.credentials_dialog
    dialog.access_key.setText("AKEY1234")
    dialog.save_button.click()
    assert "Both the access key and the secret key" in dialog.status.text()
    dialog.paste.setPlainText("not a block {")
    assert "paste it whole" in dialog.status.text()
    dialog.close()
