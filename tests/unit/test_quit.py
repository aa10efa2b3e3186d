"""Quit's question: asked only with tunnels the user opened, in the singular or plural."""

from __future__ import annotations

from tray_app.core.ports import Question
from tray_app.core.quit import ask_quit
from tray_app.core.tunnels.model import TunnelInfo, TunnelState


class Answer:
    def __init__(self, answer: int | None) -> None:
        self.answer = answer
        self.asked: list[Question] = []

    async def ask(self, question: Question) -> int | None:
        self.asked.append(question)
        return self.answer

    async def ask_text(self, title: str, prompt: str) -> str | None:
        return None

    def cancel_all(self) -> None:
        pass


def tunnel(key: str, state: TunnelState = TunnelState.READY, prewarmed: bool = False) -> TunnelInfo:
    return TunnelInfo(key, key, state, prewarmed=prewarmed)


async def test_nothing_open_quits_without_a_question() -> None:
    ask = Answer(None)
    ended = [tunnel("a", TunnelState.CLOSED), tunnel("b", prewarmed=True)]
    assert await ask_quit(ask, ended) is False and ask.asked == []


async def test_one_tunnel_is_asked_in_the_singular_and_the_answer_decides() -> None:
    keep, stop, cancel = Answer(0), Answer(1), Answer(None)
    open_ = [tunnel("a"), tunnel("b", prewarmed=True)]  # the prewarmed one is not counted
    assert await ask_quit(keep, open_) is False
    assert await ask_quit(stop, open_) is True
    assert await ask_quit(cancel, open_) is None
    (question,) = keep.asked
    assert question.choices == ("Keep the session running", "Shut it down", "Cancel")
    assert question.destructive == 1


async def test_several_tunnels_are_counted() -> None:
    ask = Answer(2)
    assert await ask_quit(ask, [tunnel("a"), tunnel("b", TunnelState.CONNECTING)]) is None
    assert ask.asked[0].text.startswith("2 session tunnels are open")
    assert ask.asked[0].choices[:2] == ("Keep sessions running", "Shut them down")
