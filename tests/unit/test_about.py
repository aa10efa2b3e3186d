"""The About box says where secrets really go and which clearml-session a Connect runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tray_app.core.about import about_text, clearml_session_words


def test_the_about_text_names_the_cli_and_where_secrets_go_escaped() -> None:
    text = about_text(
        log_folder="/home/u/.local/state/clearml-tray/log",
        secrets="Passwords you ask the tray to keep are in the system keyring: <GNOME>.",
        clearml_session=clearml_session_words(
            ("/opt/clearml-tray/clearml-tray", "_clearml-session")
        ),
    )
    assert "clearml-session: the one bundled with this app." in text
    assert "&lt;GNOME&gt;" in text and "<GNOME>" not in text
    assert "/home/u/.local/state/clearml-tray/log" in text


def test_which_clearml_session_in_words() -> None:
    assert clearml_session_words(("/venv/bin/clearml-session",)) == (
        "clearml-session: /venv/bin/clearml-session"
    )
    problem = "The clearml-session set in Settings (x) is not an executable file."
    assert clearml_session_words(None, problem) == problem
    assert clearml_session_words(None) == "clearml-session: none found."


async def test_a_keyring_that_does_not_answer_holds_up_neither_about_nor_quit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from tray_app.core import about
    from tray_app.core.about import describe
    from tray_app.core.settings.secrets import SecretStore
    from tray_app.core.tunnels.environment import ChildEnvironment

    release = threading.Event()

    class Locked(SecretStore):
        def describe(self) -> str:
            release.wait(30)  # its unlock prompt stays open
            return "never shown"

    monkeypatch.setattr(about, "KEYRING_WAIT_S", 0.1)
    env = ChildEnvironment(tmp_path, executable="/x/clearml-session", shim=False)
    text = await describe(Locked(data_dir=tmp_path), env, "/logs")
    release.set()
    assert "did not answer" in text and "/x/clearml-session" in text
