"""The first-run window explains the configuration problem and offers the ways out."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from tray_app.core.config import ConfigInvalid, ConfigNotFound, load_server_config
from tray_app.qt.dialogs.onboarding import OnboardingDialog


def _not_found(tmp_path: Path) -> ConfigNotFound:
    try:
        load_server_config(env={"HOME": str(tmp_path)})
    except ConfigNotFound as exc:
        return exc
    raise AssertionError("expected ConfigNotFound")


def test_not_found_explains_and_offers_demo(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = OnboardingDialog(_not_found(tmp_path))
    qtbot.addWidget(dialog)
    assert "No ClearML configuration found" in dialog.problem.text()
    assert str(tmp_path / "clearml.conf") in dialog.problem.text()
    with qtbot.waitSignal(dialog.demo_requested, timeout=1000):
        dialog.demo.click()


def test_invalid_file_shows_file_and_line(qtbot: QtBot, tmp_path: Path) -> None:
    error = ConfigInvalid("syntax error near column 3: Expected end of text", tmp_path / "c", 7)
    dialog = OnboardingDialog(error)
    qtbot.addWidget(dialog)
    assert f"{tmp_path / 'c'}, line 7" in dialog.problem.text()


def test_choosing_a_file_and_retry(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = OnboardingDialog(_not_found(tmp_path))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.retry_requested, timeout=1000):
        dialog.retry.click()
    with qtbot.waitSignal(dialog.config_file_chosen, timeout=1000) as blocker:
        dialog.choose_file(str(tmp_path / "clearml.conf"))
    assert blocker.args == [str(tmp_path / "clearml.conf")]
    dialog.set_error(None)
    assert dialog.problem.text() == "ClearML is configured."
