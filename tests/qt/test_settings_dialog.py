"""Settings dialog: edits apply as a new Settings; invalid values are refused with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from pytestqt.qtbot import QtBot

from tray_app.core.settings.settings import (
    IdleMode,
    ServerProfile,
    Settings,
    load_settings,
    save_settings,
)
from tray_app.qt.dialogs.settings_dialog import SettingsDialog


def _dialog(qtbot: QtBot, settings: Settings | None = None) -> SettingsDialog:
    dialog = SettingsDialog(settings or Settings())
    qtbot.addWidget(dialog)
    return dialog


def test_edits_round_trip_through_the_settings_file(qtbot: QtBot, tmp_path: Path) -> None:
    conf = tmp_path / "other.conf"
    conf.write_text("api {}\n")
    dialog = _dialog(qtbot)
    accepted: list[Settings] = []
    dialog.settings_accepted.connect(accepted.append)
    dialog.poll_interval.setValue(30)
    dialog.show_all_users.setChecked(True)
    dialog.editor_command.setText("codium --verbose")
    other_cli = tmp_path / "clearml-session"
    other_cli.write_text("#!/bin/sh\n")
    other_cli.chmod(0o755)
    dialog.clearml_session.setText(f"  {other_cli}  ")
    dialog.hotkey.setKeySequence(QKeySequence("Ctrl+Alt+K"))
    dialog.notify["server_unreachable"].setChecked(True)
    dialog.idle_mode.setCurrentIndex(2)
    dialog.cpu_threshold.setValue(1.5)
    dialog.idle_window.setValue(90)
    assert not dialog.job_finished.isChecked()  # off by default
    qtbot.mouseClick(dialog.job_finished, Qt.MouseButton.LeftButton)
    dialog.add_profile("lab", str(conf))
    assert dialog.try_accept()
    (settings,) = accepted
    assert settings.poll_interval_s == 30 and settings.show_all_users
    assert settings.editor_command == "codium --verbose"
    assert settings.clearml_session == str(other_cli)
    assert settings.hotkey == "Ctrl+Alt+K"
    assert settings.notifications.server_unreachable
    assert settings.idle.mode == IdleMode.NOTIFY_THEN_STOP
    assert settings.idle.cpu_threshold_cores == 1.5 and settings.idle.window_minutes == 90
    assert settings.idle.job_finished_notice
    assert settings.active_profile == "lab"
    assert [(p.name, p.config_file) for p in settings.profiles] == [
        ("default", ""),
        ("lab", str(conf)),
    ]
    path = tmp_path / "settings.json"
    save_settings(settings, [], path)
    assert load_settings(path).settings == settings


def test_the_warm_tunnel_caps_are_set_in_the_dialog(qtbot: QtBot) -> None:
    dialog = _dialog(qtbot)
    accepted: list[Settings] = []
    dialog.settings_accepted.connect(accepted.append)
    assert not dialog.warm_max.isEnabled()  # only with warm tunnels on
    dialog.warm_tunnels.setChecked(True)
    assert dialog.warm_max.isEnabled() and dialog.warm_max_mb.isEnabled()
    dialog.warm_max.setValue(5)
    dialog.warm_max_mb.setValue(800)
    assert dialog.try_accept()
    (settings,) = accepted
    assert (settings.warm_tunnels, settings.warm_tunnels_max, settings.warm_tunnels_max_mb) == (
        True,
        5,
        800,
    )


def test_invalid_values_keep_the_dialog_open_with_the_reason(qtbot: QtBot) -> None:
    dialog = _dialog(qtbot)
    accepted: list[Any] = []
    dialog.settings_accepted.connect(accepted.append)
    dialog.show()
    dialog.poll_interval.setValue(2)
    dialog.gpu_threshold.setValue(150)
    assert not dialog.try_accept()
    assert accepted == []
    assert dialog.isVisible()
    assert "poll interval 2 s is not in 5..3600 s" in dialog.error.text()
    assert "GPU threshold 150.0% is not in 0..100" in dialog.error.text()
    dialog.poll_interval.setValue(20)
    dialog.gpu_threshold.setValue(10)
    assert dialog.try_accept()
    assert len(accepted) == 1


def test_missing_config_file_is_refused(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = _dialog(qtbot)
    dialog.config_file.setText(str(tmp_path / "missing.conf"))
    assert not dialog.try_accept()
    assert "does not exist" in dialog.error.text()


def test_profiles_switch_and_remove(qtbot: QtBot, tmp_path: Path) -> None:
    a, b = tmp_path / "a.conf", tmp_path / "b.conf"
    a.write_text("")
    b.write_text("")
    settings = Settings(
        profiles=[ServerProfile("a", str(a)), ServerProfile("b", str(b))], active_profile="b"
    )
    dialog = _dialog(qtbot, settings)
    assert dialog.profile.currentText() == "b"
    assert dialog.config_file.text() == str(b)
    dialog.profile.setCurrentIndex(0)
    assert dialog.config_file.text() == str(a)
    dialog.remove.click()
    value = dialog.value()
    assert [p.name for p in value.profiles] == ["b"] and value.active_profile == "b"
    assert not dialog.remove.isEnabled()


def test_status_lines(qtbot: QtBot) -> None:
    dialog = _dialog(qtbot)
    dialog.show()
    dialog.set_hotkey_status("Ctrl+Alt+C is already used by another program")
    assert not dialog.hotkey_status.isHidden()
    assert "already used" in dialog.hotkey_status.text()
    dialog.set_autostart_status("starting on login is not supported on plan9")
    assert not dialog.start_on_login.isEnabled()


def test_the_server_in_use_is_shown_the_demo_included(qtbot: QtBot) -> None:
    dialog = _dialog(qtbot)
    dialog.show()
    assert dialog.in_use.isHidden()
    dialog.set_server_in_use("the built-in demo server at http://127.0.0.1:41000, …")
    assert not dialog.in_use.isHidden()
    assert dialog.in_use.text().startswith("In use: the built-in demo server")
    # One title (Qt adds the app's name), and the retry limit says what it counts.
    assert dialog.windowTitle() == "Settings"
    assert dialog.retry_limit.text() == "3 failed attempts in a row"


def test_clearing_the_hotkey_means_none(qtbot: QtBot) -> None:
    dialog = _dialog(qtbot)
    dialog.hotkey.clear()
    assert dialog.value().hotkey == ""
    assert dialog.try_accept()


def test_settings_and_the_keys_dialog_are_not_resizable(qtbot: QtBot) -> None:
    """A resizable window gets a resize handle from the window manager along its bottom edge
    (openbox draws it as a thin line); these have one right size."""
    from tray_app.qt.dialogs.credentials import CredentialsDialog

    async def submit(creds: Any) -> Any:
        raise AssertionError("not called")

    for dialog in (_dialog(qtbot), CredentialsDialog(submit)):
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        assert dialog.minimumSize() == dialog.maximumSize()
