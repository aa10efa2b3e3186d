"""A test fails if a modal dialog runs its own event loop while an asyncio task is running.

A modal `exec()` (or QMessageBox.question and friends) inside a coroutine nests Qt's event loop
inside an asyncio task; on qasync every other task then fails with "Cannot enter into task …
while another task … is being executed", which once wedged the tray on the first connect. Every
way to run a modal dialog from Python is wrapped for the whole test session: one called inside
a task raises, and the test fails at teardown even if the app swallowed that error.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_violations: list[str] = []


def _in_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


def _guard(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        task = _in_task()
        if task is not None:
            message = f"modal {name} inside the asyncio task {task.get_name()}"
            _violations.append(message)
            raise AssertionError(message)
        return original(*args, **kwargs)

    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    return guarded


def _targets() -> list[tuple[Any, str]]:
    from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog, QMenu, QMessageBox

    targets: list[tuple[Any, str]] = [(QDialog, "exec"), (QMenu, "exec")]
    targets += [
        (QMessageBox, n)
        for n in ("exec", "question", "information", "warning", "critical", "about")
    ]
    targets += [(QInputDialog, n) for n in ("exec", "getText", "getItem", "getInt", "getDouble")]
    targets += [
        (QFileDialog, n)
        for n in ("exec", "getOpenFileName", "getSaveFileName", "getExistingDirectory")
    ]
    return targets


@pytest.fixture(autouse=True)
def no_modal_dialog_inside_a_task(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if "PySide6.QtWidgets" in sys.modules:
        for owner, name in _targets():
            original = owner.__dict__.get(name, getattr(owner, name))
            if isinstance(original, staticmethod):
                original = original.__func__
            wrapped = _guard(f"{owner.__name__}.{name}", getattr(owner, name))
            is_static = isinstance(owner.__dict__.get(name), staticmethod) or name.startswith(
                ("get", "question", "information", "warning", "critical", "about")
            )
            monkeypatch.setattr(owner, name, staticmethod(wrapped) if is_static else wrapped)
    _violations.clear()
    yield
    found, _violations[:] = list(_violations), []
    assert not found, "; ".join(found)
