"""The suite's guard really catches a modal dialog inside an asyncio task (and only there)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from support import modal_guard


async def test_a_modal_question_inside_a_task_fails_the_test(qapp: Any) -> None:
    with pytest.raises(
        AssertionError, match=r"modal QMessageBox\.question inside the asyncio task"
    ):
        QMessageBox.question(None, "t", "a modal question from a coroutine")
    box = QMessageBox()
    with pytest.raises(AssertionError, match=r"modal QMessageBox\.exec"):
        box.exec()
    assert len(modal_guard._violations) == 2
    modal_guard._violations.clear()  # seen: this test's teardown must not fail on them


def test_a_modal_dialog_outside_any_task_is_left_alone(qapp: Any) -> None:
    box = QMessageBox()
    QTimer.singleShot(50, box.accept)
    box.exec()  # from a plain (non-async) caller: allowed, and it returns
    assert not modal_guard._violations


async def test_the_app_loop_is_qasync(qapp: Any) -> None:
    loop = asyncio.get_running_loop()
    import qasync

    assert isinstance(loop, qasync.QEventLoop)
    assert QApplication.instance() is not None
