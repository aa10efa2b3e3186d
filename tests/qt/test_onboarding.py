"""The first-run window explains the configuration problem and offers the ways out."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from tray_app.core.server.config import load_server_config
from tray_app.core.server.errors import ConfigInvalid, ConfigNotFound
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


def test_the_texts_read_as_one_block_without_gaps(qtbot: QtBot, tmp_path: Path) -> None:
    """Seen on a first run: the window's spare height went into gaps above and between the
    texts. The window is now as tall as they are, and not resizable (no resize handle)."""
    dialog = OnboardingDialog(_not_found(tmp_path))
    qtbot.addWidget(dialog)
    dialog.resize(620, 700)  # a window manager asking for more room gets none
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.minimumSize() == dialog.maximumSize() == dialog.size()
    layout = dialog.layout()
    assert layout is not None
    problem, steps = dialog.problem, dialog.findChildren(QLabel)[1]
    assert steps is not problem and "clearml-init" in steps.text()
    margin = layout.contentsMargins().top()
    spacing = layout.spacing()
    assert problem.geometry().top() <= margin + 1
    assert steps.geometry().top() - problem.geometry().bottom() <= spacing + 1
    for label in (problem, steps):  # no taller than their text: no blank band inside
        assert label.height() <= label.heightForWidth(label.width()) + 1


def test_the_window_is_as_tall_as_its_text_and_offers_the_keys(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """Seen on a first run: a fixed 380 px window, half of it empty below the steps."""
    dialog = OnboardingDialog(_not_found(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    layout = dialog.layout()
    assert layout is not None
    spare = dialog.retry.geometry().top() - dialog.findChildren(QLabel)[-1].geometry().bottom()
    assert spare <= 3 * layout.spacing() + 1
    with qtbot.waitSignal(dialog.keys_requested, timeout=1000):
        dialog.keys.click()
