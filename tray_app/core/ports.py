"""The small protocols a workflow needs to reach the user and the desktop.

Flows in `tray_app.core.flows` are Qt-free: they ask questions, notify, copy, open and run
commands only through these ports. The Qt side implements them with non-modal dialogs whose
answers resolve futures (`tray_app.qt.questions`), never a modal `exec()` inside a coroutine;
tests pass scripted implementations.

Protocols only; the flows' tests pass scripted ports, tests/qt/test_questions.py the Qt ones.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Buttons = Sequence[tuple[str, Callable[[], None]]]
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


@dataclass(frozen=True, slots=True)
class Question:
    """A question with buttons; `choices[default]` has the focus (Enter takes it). Closing the
    dialog is "no answer"."""

    title: str
    text: str
    choices: tuple[str, ...] = ("OK",)
    detail: str = ""  # shown folded (a diff, a long explanation)
    destructive: int | None = None  # the index of a choice that destroys something
    default: int = 0  # the button Enter presses: the safe one where a choice destroys


class Ask(Protocol):
    async def ask(self, question: Question) -> int | None:
        """The index of the chosen button, or None when the user closed the dialog."""
        ...

    async def ask_text(self, title: str, prompt: str) -> str | None:
        """A line of text, or None when cancelled."""
        ...

    def cancel_all(self) -> None:
        """Close every open question (Quit): their awaiting flows get None."""
        ...


class Notify(Protocol):
    def notify(
        self,
        kind: str,
        title: str,
        body: str,
        buttons: Buttons = (),
        *,
        critical: bool = False,
        tag: str = "",  # a later notification with the same tag replaces this one
    ) -> bool: ...


# A secret put in the clipboard (a session password) is taken out again after this long, if
# it is still there: other programs and clipboard managers read the clipboard too.
SECRET_CLIPBOARD_S = 30.0


class Desktop(Protocol):
    """What the desktop does for us: clipboard, URLs, detached programs."""

    def copy(self, text: str) -> None: ...

    def copy_secret(self, text: str, clear_after_s: float = SECRET_CLIPBOARD_S) -> None:
        """`copy`, then clear the clipboard after `clear_after_s` if it still holds `text`."""
        ...

    def open_url(self, url: str) -> bool: ...

    def start_detached(self, argv: Sequence[str]) -> bool: ...


class Runner(Protocol):
    async def run(
        self, argv: Sequence[str], env: Mapping[str, str], timeout_s: float = 60
    ) -> tuple[int, str]:
        """Run a short command without blocking the loop: (exit code, merged output)."""
        ...


async def confirm(ask: Ask, question: Question) -> bool:
    """True only when the first (default) choice was taken."""
    return await ask.ask(question) == 0
