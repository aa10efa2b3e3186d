"""New session dialog: presets fill the form, the command is live and masked, queues complete."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from tray_app.core.models import QueueInfo
from tray_app.core.presets import PasswordPolicy, Preset
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


def test_extra_args_with_a_reserved_flag_are_refused(qtbot: QtBot) -> None:
    dialog = make(qtbot, GPU)
    dialog.extra_args.setText("--yes")
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
