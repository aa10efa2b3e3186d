"""Cancel on a launch or a connect coming up: the notice says "cancelled", the row goes, and
the task is deleted or stopped as the user chose."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.tunnel_rig import Rig

from tray_app.core.ports import Question
from tray_app.core.server.models import Snapshot
from tray_app.core.server.refresh import PollStatus, TrayState
from tray_app.core.settings.presets import Preset
from tray_app.core.tunnels.cancel import CancelFlow
from tray_app.core.tunnels.model import TunnelState
from tray_app.core.view.menu import TrayView, build_menu, flatten_text

HERE = Path(__file__).resolve().parents[2] / "fixtures" / "transcripts"
CREATED = "New session created [id=bef156f7c3e24a3b9d8c56839b94be5b]"
SID = "bef156f7c3e24a3b9d8c56839b94be5b"


class Server:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.stopped: list[str] = []

    async def delete(self, session_id: str) -> bool:
        self.deleted.append(session_id)
        return True

    async def stop(self, session_id: str, *, force: bool = False) -> str:
        self.stopped.append(session_id)
        return "stopped"


class Ask:
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


def _until_created() -> str:
    text = (HERE / "real_ready_ssh_only.txt").read_text(encoding="utf-8")
    return text[: text.index(CREATED) + len(CREATED)] + "\n"


def _rig_with_flow(
    make_rig: Callable[..., Rig], answer: int | None
) -> tuple[Rig, Ask, Server, list[int]]:
    holder: list[CancelFlow] = []
    rig = make_rig(cancel=lambda key: holder[0].cancel(key))
    ask, server, refreshes = Ask(answer), Server(), []

    def spawn(coro: Any) -> None:
        import asyncio

        rig.tasks.append(asyncio.ensure_future(coro))

    holder.append(
        CancelFlow(
            rig.registry,
            ask=ask,
            notify=rig.rec,
            spawn=spawn,
            server=lambda: server,  # type: ignore[arg-type,return-value]
            refresh=lambda: refreshes.append(1),
        )
    )
    return rig, ask, server, refreshes


def _menu(rig: Rig) -> list[str]:
    view = TrayView(
        PollStatus(TrayState.OK, last_success=datetime.now(UTC)),
        Snapshot((), datetime.now(UTC)),
        tunnels=rig.registry.tunnels(),
    )
    return flatten_text(build_menu(view))


@pytest.mark.parametrize(
    ("answer", "deleted", "said"), [(0, True, "deleted"), (1, False, "stopped")]
)
async def test_cancel_on_a_launch_ends_it_as_chosen_and_leaves_no_row(
    make_rig: Callable[..., Rig], answer: int, deleted: bool, said: str
) -> None:
    rig, ask, server, refreshes = _rig_with_flow(make_rig, answer)
    await rig.registry.create(Preset(name="cpu-default", queue="sessions"))
    rig.child.print(_until_created())
    await rig.settle()
    assert any(line.startswith("◐ cpu-default (bef156f7)") for line in _menu(rig))
    ((_kind, _title, _body, buttons, progress_tag),) = rig.rec.notices
    dict(buttons)["Cancel"]()  # the "Starting a session" notice's button
    await rig.settle()
    (question,) = ask.asked
    assert question.title == "Cancel “cpu-default (bef156f7)”?"
    assert question.choices == (
        "Delete the session",
        "Stop it, keep it in ClearML",
        "Keep starting",
    )
    # The launch notice is replaced (same tag) by one that says it was cancelled.
    kind, title, body, _buttons, tag = rig.rec.notices[-1]
    assert (kind, title, tag) == ("info", "Launch cancelled", progress_tag)
    assert said in body
    assert (server.deleted, server.stopped) == (([SID], []) if deleted else ([], [SID]))
    assert refreshes == [1]
    rig.child.exit(0)  # the CLI ends on its SIGTERM
    await rig.settle()
    assert rig.child.terminated == 1 and rig.only().state is TunnelState.CLOSED
    assert rig.rec.kinds() == ["progress", "info"]  # no failure notice after it
    assert not any(line.startswith(("◐", "◌")) for line in _menu(rig))


async def test_keep_starting_changes_nothing(make_rig: Callable[..., Rig]) -> None:
    rig, ask, server, _ = _rig_with_flow(make_rig, 2)
    await rig.registry.create(Preset(name="cpu-default", queue="sessions"))
    rig.child.print(_until_created())
    await rig.settle()
    ((_, _, _, buttons, _),) = rig.rec.notices
    dict(buttons)["Cancel"]()
    await rig.settle()
    assert len(ask.asked) == 1 and rig.child.terminated == 0
    assert server.deleted == server.stopped == [] and rig.rec.kinds() == ["progress"]


async def test_cancel_before_the_cli_created_anything_ends_it_quietly(
    make_rig: Callable[..., Rig],
) -> None:
    rig, _ask, server, _ = _rig_with_flow(make_rig, 0)
    await rig.registry.create(Preset(name="cpu-default", queue="sessions"))
    ((_, _, _, buttons, _),) = rig.rec.notices
    dict(buttons)["Cancel"]()
    await rig.settle()
    assert rig.child.terminated == 1 and server.deleted == []
    assert rig.rec.notices[-1][1:3] == ("Launch cancelled", "cpu-default: no session was created.")


async def test_cancel_on_a_connect_ends_the_tunnel_and_keeps_the_session(
    make_rig: Callable[..., Rig],
) -> None:
    rig, ask, server, _ = _rig_with_flow(make_rig, 0)
    await rig.registry.attach_now(SID, "gpu box")
    ((_, _, _, buttons, tag),) = rig.rec.notices
    dict(buttons)["Cancel"]()
    await rig.settle()
    assert ask.asked == [] and rig.child.terminated == 1
    assert server.deleted == server.stopped == []
    assert rig.rec.notices[-1] == (
        "info",
        "Connection cancelled",
        "gpu box (bef156f7): the session keeps running.",
        [],
        tag,
    )
