"""New session dialog: presets fill the form, the command is live and masked, queues complete."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from tray_app.core.server.models import QueueInfo
from tray_app.core.settings.presets import PasswordPolicy, Preset
from tray_app.qt.dialogs.log_window import LogWindow
from tray_app.qt.dialogs.new_session import QUEUE_NAME_ROLE, NewSessionDialog

GPU = Preset(
    name="gpu",
    queue="gpu-a100",
    docker_image="nvidia/cuda:12.4",
    packages=["torch", "numpy"],
    tags=["exp"],
    jupyter_lab=False,
)


def make(qtbot: QtBot, *presets: Preset, **kwargs: object) -> NewSessionDialog:
    dialog = NewSessionDialog(list(presets), **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    return dialog


def test_picking_a_preset_fills_the_form_and_the_command(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU)
    assert dialog.queue.text() == "gpu-a100"
    assert dialog.docker_image.text() == "nvidia/cuda:12.4"
    assert dialog.packages.text() == "torch numpy"
    command = dialog.command.toPlainText()
    assert command.startswith("clearml-session --queue gpu-a100 --docker nvidia/cuda:12.4")
    assert "--packages torch numpy" in command and "--jupyter-lab false" in command
    assert "--yes" not in command


def test_the_round_trip_keeps_the_preset(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU)
    assert dialog.preset() == GPU


def test_editing_a_field_updates_the_command_live(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU)
    dialog.queue.setText("sessions")
    assert "--queue sessions" in dialog.command.toPlainText()


def test_fixed_password_is_masked_in_the_command(qtbot: QtBot) -> None:
    dialog = make(qtbot, Preset(name="p", queue="q", password_policy=PasswordPolicy.FIXED))
    command = dialog.command.toPlainText()
    assert "--password '***'" in command or "--password ***" in command


def test_copy_puts_the_masked_command_on_the_clipboard(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU)
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == dialog.command_text()
    assert dialog.command_text().startswith("clearml-session --queue gpu-a100")


def test_validation_errors_are_shown_and_block_launch(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = make(qtbot, GPU)
    launched: list[Preset] = []
    dialog.launch_requested.connect(launched.append)
    dialog.queue.setText("")
    dialog.requirements_file.setText(str(tmp_path / "missing.txt"))
    assert dialog.errors.isHidden()  # nothing touched by the user yet
    qtbot.keyClicks(dialog.docker_image, "-slim")  # the user edits a field
    assert not dialog.errors.isHidden()
    assert "no queue is set" in dialog.errors.text()
    assert "does not exist" in dialog.errors.text()
    assert not dialog.launch_button.isEnabled()
    dialog.launch()
    assert launched == []


def test_launch_emits_the_preset(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU)
    dialog.session_name.setText("my-run")
    with qtbot.waitSignal(dialog.launch_requested) as blocker:
        dialog.launch_button.click()
    preset = blocker.args[0]
    assert isinstance(preset, Preset) and preset.session_name == "my-run"
    assert preset.queue == "gpu-a100"


def test_save_as_preset_emits_the_form(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    dialog.name.setText("cpu")
    dialog.queue.setText("default")
    with qtbot.waitSignal(dialog.save_requested) as blocker:
        dialog.save_button.click()
    assert blocker.args[0].name == "cpu" and blocker.args[0].queue == "default"


def test_a_saved_preset_is_confirmed_in_the_dialog_and_chosen_in_the_picker(
    qtbot: QtBot,
) -> None:
    dialog = make(qtbot)
    assert dialog.preset_picker.currentText() == "(new preset)"
    dialog.name.setText("cpu box")
    dialog.queue.setText("default")
    with qtbot.waitSignal(dialog.save_requested) as blocker:
        dialog.save_button.click()
    dialog.preset_saved(blocker.args[0])  # what the app does once the file is written
    assert dialog.preset_picker.currentText() == "cpu box"
    assert not dialog.saved_note.isHidden()
    assert "Saved as the preset “cpu box”" in dialog.saved_note.text()
    assert dialog.name.text() == "cpu box"  # the form stays as it was
    dialog.save_button.click()  # saved again: still one entry
    assert [dialog.preset_picker.itemText(i) for i in range(dialog.preset_picker.count())].count(
        "cpu box"
    ) == 1


def test_extra_args_with_a_reserved_flag_are_refused(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU)
    qtbot.keyClicks(dialog.extra_args, "--yes")
    assert "managed by the app" in dialog.errors.text()
    assert not dialog.launch_button.isEnabled()


async def test_queues_load_when_the_dialog_opens(qtbot: QtBot) -> None:
    loaded = asyncio.Event()

    async def queues() -> list[QueueInfo]:
        loaded.set()
        return [
            QueueInfo(id="1", name="sessions", free_workers=2, total_workers=3, interactive=True),
            QueueInfo(id="2", name="gpu-a100", free_workers=0, total_workers=1),
        ]

    dialog = make(qtbot, GPU, load_queues=queues)
    dialog.show()
    await asyncio.wait_for(loaded.wait(), 5)
    assert dialog._queue_task is not None
    await dialog._queue_task
    model = dialog.queue_model
    names = [model.item(i).data(QUEUE_NAME_ROLE) for i in range(model.rowCount())]
    labels = [model.item(i).text() for i in range(model.rowCount())]
    assert names == ["sessions", "gpu-a100"]
    assert labels == ["sessions — 2 free / 3 workers", "gpu-a100 — 0 free / 1 worker"]
    assert dialog.queue_status.text() == "2 queues, 2 free workers"
    completer = dialog.queue.completer()
    completer.setCompletionPrefix("gpu")
    assert completer.currentCompletion() == "gpu-a100"


async def test_queue_loading_failure_is_shown(qtbot: QtBot) -> None:
    async def broken() -> list[QueueInfo]:
        raise ConnectionError("server unreachable")

    dialog = make(qtbot, load_queues=broken)
    await dialog.load_queues()
    # A sentence for the user; the exception text goes to the log only.
    assert "could not be loaded" in dialog.queue_status.text()
    assert "server unreachable" not in dialog.queue_status.text()


def test_log_window_follows_and_handles_carriage_returns(qtbot: QtBot) -> None:
    window = LogWindow("log", "line 1\n")
    qtbot.addWidget(window)
    window.append("progress 10%\rprogress 50%")
    window.append("\rprogress 100%\ndone\n")
    assert window.plain_text() == "line 1\nprogress 100%\ndone\n"


def test_log_window_keeps_position_when_scrolled_up(qtbot: QtBot) -> None:
    window = LogWindow("log")
    qtbot.addWidget(window)
    window.show()
    window.append("".join(f"line {i}\n" for i in range(500)))
    bar = window.text.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    assert bar.value() == bar.maximum()
    bar.setValue(10)
    window.append("more\n")
    assert bar.value() == 10
    bar.setValue(bar.maximum())
    window.append("".join(f"tail {i}\n" for i in range(50)))
    assert bar.value() == bar.maximum()


def test_errors_wait_for_a_touch_or_launch_and_a_one_off_needs_no_preset_name(
    qtbot: QtBot,
) -> None:
    dialog = make(qtbot)
    launched: list[Preset] = []
    dialog.launch_requested.connect(launched.append)
    assert dialog.errors.isHidden() and dialog.launch_button.isEnabled()  # no red on opening
    dialog.launch_button.click()
    assert launched == [] and "no queue is set" in dialog.errors.text()
    assert "name" not in dialog.errors.text()  # a one-off launch needs no preset name
    qtbot.keyClicks(dialog.queue, "sessions")
    assert dialog.errors.isHidden()
    dialog.launch_button.click()
    (preset,) = launched
    assert preset.queue == "sessions" and preset.name == "Interactive Session"


def test_saving_asks_for_the_preset_name(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    saved: list[Preset] = []
    dialog.save_requested.connect(saved.append)
    qtbot.keyClicks(dialog.queue, "sessions")
    dialog.save_button.click()
    assert saved == [] and "give the preset a name" in dialog.errors.text()


def test_essentials_first_the_rest_under_advanced_with_tooltips(qtbot: QtBot) -> None:
    from tray_app.qt.dialogs.new_session import TOOLTIPS

    dialog = make(qtbot, GPU)
    dialog.show()
    for widget in (dialog.preset_picker, dialog.queue_box, dialog.docker_image, dialog.packages):
        assert widget.isVisible()
    assert not dialog.session_name.isVisible() and not dialog.public_ip.isVisible()
    dialog.advanced_toggle.click()
    assert dialog.session_name.isVisible() and dialog.public_ip.isVisible()
    for name in TOOLTIPS:
        assert getattr(dialog, name).toolTip(), name


def _queues() -> list[QueueInfo]:
    return [
        QueueInfo(id="1", name="default", free_workers=0, total_workers=2),
        QueueInfo(id="2", name="gpu-a100", free_workers=1, total_workers=1),
        QueueInfo(id="3", name="sessions", free_workers=2, total_workers=3, interactive=True),
    ]


def test_the_queue_list_is_browsable_preselected_and_unknown_queues_are_flagged(
    qtbot: QtBot,
) -> None:
    dialog = make(qtbot)
    dialog.set_queues(_queues())
    assert dialog.queue.text() == "sessions"  # an interactive queue with a free worker
    assert dialog.queue_box.count() == 3
    assert dialog.queue_box.itemText(1) == "gpu-a100 — 1 free / 1 worker"
    dialog.queue_box.activated.emit(1)  # picked from the drop-down list
    assert dialog.queue.text() == "gpu-a100"
    dialog.queue.clear()
    qtbot.keyClicks(dialog.queue, "gpu-h100")
    assert "no queue named “gpu-h100”" in dialog.errors.text()
    assert not dialog.launch_button.isEnabled()
    # A preset's queue is kept when the list arrives.
    with_preset = make(qtbot, GPU)
    with_preset.set_queues(_queues())
    assert with_preset.queue.text() == "gpu-a100"


def test_a_queue_no_worker_serves_is_marked_in_the_list_and_under_the_field(
    qtbot: QtBot,
) -> None:
    dialog = make(qtbot)
    dialog.set_queues([*_queues(), QueueInfo(id="4", name="idle-q", total_workers=0)])
    assert dialog.queue_box.itemText(3) == "idle-q — ⚠ no worker serves it"
    assert dialog.queue_status.text() == "4 queues, 3 free workers"
    dialog.queue_box.activated.emit(3)
    assert dialog.queue.text() == "idle-q"
    assert "No worker serves “idle-q”" in dialog.queue_status.text()
    assert dialog.launch_button.isEnabled()  # a warning, not a refusal: an agent may come


def test_the_queue_starts_on_the_last_used_one(qtbot: QtBot) -> None:
    launched: list[Preset] = []
    dialog = make(qtbot, last_queue="default")
    dialog.launch_requested.connect(launched.append)
    assert dialog.queue.text() == "default"  # at once, before the list has loaded
    dialog.set_queues(_queues())
    # Kept although "sessions" has free workers: the user's last choice wins.
    assert dialog.queue.text() == "default"
    assert dialog.errors.isHidden()
    dialog.launch_button.click()
    assert [p.queue for p in launched] == ["default"]


def test_a_preset_keeps_its_queue_and_a_one_off_gets_the_last_used_one(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU, last_queue="default")
    dialog.show()
    dialog.set_queues(_queues())
    assert dialog.queue.text() == "gpu-a100"  # the preset's own queue
    dialog.preset_picker.setFocus()
    qtbot.keyClick(dialog.preset_picker, Qt.Key.Key_Up)  # back to "(new preset)": a one-off
    qtbot.waitUntil(lambda: dialog.preset_picker.currentIndex() == 0)
    assert dialog.queue.text() == "default"


def test_a_last_used_queue_the_server_lost_gives_way_to_a_free_one(qtbot: QtBot) -> None:
    dialog = make(qtbot, last_queue="old-queue")
    assert dialog.queue.text() == "old-queue"  # nothing better is known yet
    dialog.set_queues(_queues())
    assert dialog.queue.text() == "sessions"
    assert dialog.errors.isHidden()


def test_a_typed_queue_is_not_replaced_when_the_list_arrives(qtbot: QtBot) -> None:
    dialog = make(qtbot, last_queue="default")
    dialog.queue.clear()
    qtbot.keyClicks(dialog.queue, "gpu-a100")
    dialog.set_queues(_queues())
    assert dialog.queue.text() == "gpu-a100"


def test_a_second_queue_in_the_extra_arguments_is_refused(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU)
    qtbot.keyClicks(dialog.extra_args, "--queue other")
    assert "--queue repeats the Queue field" in dialog.errors.text()


def test_the_wheel_over_an_unfocused_combo_or_spin_box_changes_nothing(qtbot: QtBot) -> None:
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    dialog = make(qtbot, GPU)
    dialog.show()
    dialog.advanced_toggle.click()
    qtbot.waitExposed(dialog)
    dialog.docker_image.setFocus()
    for widget in (dialog.public_ip, dialog.remote_ssh_port, dialog.keepalive):
        before = dialog.command.toPlainText()
        for delta in (-120, 120, -120):
            event = QWheelEvent(
                QPointF(5, 5),
                QPointF(widget.mapToGlobal(QPoint(5, 5))),
                QPoint(0, 0),
                QPoint(0, delta),
                Qt.MouseButton.NoButton,
                Qt.KeyboardModifier.NoModifier,
                Qt.ScrollPhase.NoScrollPhase,
                False,
            )
            QApplication.sendEvent(widget, event)
        assert dialog.command.toPlainText() == before, widget
    assert dialog.preset() == GPU  # no silent --public-ip false


def _in_view(dialog: NewSessionDialog, widget: QWidget) -> bool:
    viewport = dialog.form_scroll.viewport()
    top_left = widget.mapTo(viewport, QPoint(0, 0))
    return viewport.rect().contains(QRect(top_left, widget.size()))


def test_the_field_being_edited_stays_in_view_when_errors_appear(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU)
    dialog.resize(560, 380)  # a small window: the form scrolls
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    dialog.advanced_toggle.click()
    field = dialog.extra_args  # the last field of the form
    bar = dialog.form_scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(bar.maximum())  # the user scrolls down to it…
    qtbot.waitUntil(lambda: _in_view(dialog, field))
    qtbot.mouseClick(field, Qt.MouseButton.LeftButton)  # …and clicks into it
    qtbot.waitUntil(field.hasFocus)
    viewport = dialog.form_scroll.viewport()
    height = viewport.height()
    qtbot.keyClicks(field, "--yes --queue other --docker x")  # three problems, three lines
    qtbot.waitUntil(lambda: dialog.errors.isVisible() and viewport.height() < height)
    assert dialog.errors.text().count("•") >= 2
    qtbot.waitUntil(lambda: _in_view(dialog, field))
    # Still there once every pending layout and paint is done, not just for a moment.
    QApplication.processEvents()
    assert field.hasFocus() and _in_view(dialog, field)
