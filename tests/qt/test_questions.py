"""Questions are non-modal dialogs resolving futures, shown one at a time, closed by Quit."""

from __future__ import annotations

import asyncio
from typing import Any

from support.qt_dialogs import click_answer
from support.qt_wait import until

from tray_app.core.ports import Question
from tray_app.qt.questions import QtAsk


async def test_two_flows_asking_at_once_see_one_dialog_after_the_other(qapp: Any) -> None:
    ask = QtAsk()
    first = asyncio.ensure_future(ask.ask(Question("One", "first?", ("Yes", "Cancel"))))
    second = asyncio.ensure_future(ask.ask(Question("Two", "second?", ("Install", "Not now"))))
    await until(lambda: ask.open_dialogs, "the first question")
    await asyncio.sleep(0.1)
    assert len(ask.open_dialogs) == 1  # never two identical windows stacked
    assert "first?" in await click_answer(ask, "Yes")
    assert "second?" in await click_answer(ask, "Not now")
    assert (await first, await second) == (0, 1)


async def test_quit_closes_the_open_question_and_drops_the_waiting_ones(qapp: Any) -> None:
    ask = QtAsk()
    shown = asyncio.ensure_future(ask.ask(Question("One", "first?", ("Yes", "Cancel"))))
    waiting = asyncio.ensure_future(ask.ask(Question("Two", "second?", ("Yes", "Cancel"))))
    await until(lambda: ask.open_dialogs, "the first question")
    ask.cancel_all()
    assert (await shown, await waiting) == (None, None)
    assert not ask.open_dialogs


async def test_closing_the_window_is_no_answer(qapp: Any) -> None:
    ask = QtAsk()
    answer = asyncio.ensure_future(ask.ask(Question("One", "first?", ("Yes", "Cancel"))))
    await until(lambda: ask.open_dialogs, "the question")
    ask.open_dialogs[0].reject()  # Escape / the window's close button
    assert await answer is None
