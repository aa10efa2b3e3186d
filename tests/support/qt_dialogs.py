"""Answering the app's non-modal questions the way a user does: click the dialog's button."""

from __future__ import annotations

from typing import Any

from support.qt_wait import until


async def click_answer(ask: Any, label: str, limit_s: float = 15.0) -> str:
    """Wait for an open question, click its button `label`; returns the text it showed."""
    await until(lambda: ask.open_dialogs, f"a question offering “{label}”", limit_s)
    box = ask.open_dialogs[0]
    labels = [b.text().replace("&", "") for b in box.buttons()]
    assert label in labels, f"the question offers {labels}, not {label!r}"
    shown = f"{box.text()}\n{box.detailedText()}"
    box.buttons()[labels.index(label)].click()
    await until(lambda: box not in ask.open_dialogs, "the question to close", limit_s)
    return shown
