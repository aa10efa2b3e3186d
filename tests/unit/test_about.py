"""The About box says where secrets really go and which clearml-session a Connect runs."""

from __future__ import annotations

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
