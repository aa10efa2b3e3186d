"""`core.ports.Ask` with non-modal dialogs: a question is a future resolved by `finished`.

A modal `exec()` inside a coroutine runs a nested event loop in the middle of an asyncio task,
and qasync then refuses to step any other task ("Cannot enter into task … while another task
is being executed"): refreshes stop, Quit stops working. Here a dialog is shown with `open()`
and the awaiting flow resumes when the user answers, while everything else keeps running.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from PySide6.QtCore import QPoint, QTimer
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox, QWidget

from tray_app.core.ports import Question

log = logging.getLogger(__name__)

# Desktop tests click a question's buttons where they are: the buttons' screen rectangles are
# written to this file once the dialog is shown (like the tray's menu dump).
DIALOG_DUMP_ENV = "CLEARML_TRAY_TEST_DIALOG_DUMP"


class QtAsk:
    def __init__(self, parent: QWidget | None = None) -> None:
        self._parent = parent
        self._open: dict[QWidget, asyncio.Future[object]] = {}
        # One question on screen at a time: two flows asking at once (the Include line and
        # Remote-SSH) would stack identical windows on top of each other.
        self._turn: asyncio.Lock | None = None
        self._cancelled = 0  # bumped by cancel_all: questions still waiting their turn drop

    @property
    def open_dialogs(self) -> list[QWidget]:
        """Shown and unanswered (tests click them; Quit closes them)."""
        return list(self._open)

    async def ask(self, question: Question) -> int | None:
        box = QMessageBox(self._parent)
        box.setWindowTitle(question.title)
        box.setText(question.text)
        box.setIcon(QMessageBox.Icon.Question)
        if question.detail:
            box.setDetailedText(question.detail)
        buttons = []
        for index, label in enumerate(question.choices):
            if index == question.destructive:
                role = QMessageBox.ButtonRole.DestructiveRole
            elif label.lower() in ("cancel", "not now"):
                role = QMessageBox.ButtonRole.RejectRole
            else:
                role = QMessageBox.ButtonRole.AcceptRole
            buttons.append(box.addButton(label, role))
        if buttons:
            box.setDefaultButton(buttons[min(max(question.default, 0), len(buttons) - 1)])
        if "Cancel" in question.choices:
            box.setEscapeButton(buttons[question.choices.index("Cancel")])

        def answer() -> int | None:
            clicked = box.clickedButton()
            return buttons.index(clicked) if clicked in buttons else None

        result = await self._show(box, answer)
        return result if isinstance(result, int) else None

    async def ask_text(self, title: str, prompt: str) -> str | None:
        dialog = QInputDialog(self._parent)
        dialog.setWindowTitle(title)
        dialog.setLabelText(prompt)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        result = await self._show(dialog, lambda: dialog.textValue() if dialog.result() else None)
        return result if isinstance(result, str) else None

    def cancel_all(self) -> None:
        self._cancelled += 1
        for dialog, future in list(self._open.items()):
            if not future.done():
                future.set_result(None)
            dialog.close()
        self._open.clear()

    async def _show(self, dialog: QWidget, answer: object) -> object:
        if self._turn is None:
            self._turn = asyncio.Lock()
        generation = self._cancelled
        async with self._turn:
            if generation != self._cancelled:  # Quit came while this one waited
                dialog.deleteLater()
                return None
            return await self._show_now(dialog, answer)

    async def _show_now(self, dialog: QWidget, answer: object) -> object:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._open[dialog] = future

        def finished(_code: int) -> None:
            if not future.done():
                future.set_result(answer() if callable(answer) else None)

        dialog.finished.connect(finished)  # type: ignore[attr-defined]
        dialog.open()  # type: ignore[attr-defined]  # window-modal to nothing: never blocks
        dump = os.environ.get(DIALOG_DUMP_ENV)
        if dump and isinstance(dialog, QMessageBox):
            QTimer.singleShot(300, lambda: _dump_buttons(dialog, Path(dump)))
        dialog.raise_()
        dialog.activateWindow()
        try:
            return await future
        finally:
            self._open.pop(dialog, None)
            dialog.deleteLater()


def _dump_buttons(box: QMessageBox, path: Path) -> None:
    if not box.isVisible():
        return
    rows = []
    for button in box.buttons():
        corner = button.mapToGlobal(QPoint(0, 0))
        rows.append(
            {
                "label": button.text().replace("&", ""),
                "x": corner.x(),
                "y": corner.y(),
                "width": button.width(),
                "height": button.height(),
            }
        )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"title": box.windowTitle(), "buttons": rows}), encoding="utf-8")
    tmp.replace(path)
